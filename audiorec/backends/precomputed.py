"""Precomputed vectors: a file of track ids and vectors, aligned to tracks.parquet by track id.

Someone who already holds vectors (Music4All-Onion's feature files, the original study's
`embeddings/<model>.npy`) evaluates them as a backend: a params.yaml section named after
it with a `format`, and its file(s) in data/precomputed/<name>/. Formats:

- `tsv` / `csv`: a header line, a track-id column and one numeric column per dimension;
- `npy`: a 2-D matrix plus a table (tsv or csv, header line) of its track ids in row order;
- `parquet`: a track-id column and a column holding one list of numbers per row.

Rows are matched to tracks.parquet by id. Tracks the file lacks get a NaN row (masked, and
listed in metrics/extract/<name>.json as a failed extraction is); ids that are no track of
tracks.parquet are counted and otherwise ignored. Every row must have `dim` values; a
duplicate id, NaN or Inf in a row that is used is refused, naming the file, the row and the fix.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq

from audiorec import paths
from audiorec.backends.base import Backend, ExtractionError

log = logging.getLogger(__name__)

FORMATS = ("tsv", "csv", "npy", "parquet")
DELIMITERS = {"tsv": "\t", "csv": ","}
# How many of the ids that are no track of the catalogue metrics/extract/<name>.json lists.
LISTED_UNKNOWN_IDS = 20
# The keys of a precomputed backend's params.yaml section.
SETTINGS = ("format", "file", "dim", "id_column", "ids", "vector_column")


class PrecomputedFileError(ValueError):
    """A precomputed file that cannot be aligned: the message names the file, the row and the fix."""


@dataclass(frozen=True)
class Vectors:
    """A file's rows as read: ids, a (rows, dim) float32 matrix, and how a message names row i."""

    path: Path
    ids: np.ndarray
    matrix: np.ndarray
    locate: Callable[[int], str]


def table_line(row: int) -> str:
    return f"line {row + 2}"  # after the header line, counted from 1 as an editor shows it


def array_row(row: int) -> str:
    return f"row {row}"


def require_column(path: Path, columns: list, column: str, setting: str, holding: str) -> None:
    if column not in columns:
        raise PrecomputedFileError(
            f"{path}: no column {column!r} (its columns: {', '.join(map(str, columns[:8]))}); "
            f"set {setting} to the column holding {holding}"
        )


def read_ids(path: Path, id_column: str, name: str) -> pd.Series:
    """The `id_column` of a tsv (by its extension) or csv table with a header line, as strings."""
    delimiter = "\t" if path.suffix == ".tsv" else ","
    require_column(
        path, list(pd.read_csv(path, sep=delimiter, nrows=0).columns), id_column, f"{name}.id_column", "the track ids"
    )
    return pd.read_csv(path, sep=delimiter, usecols=[id_column], dtype=str, keep_default_na=False)[id_column]


def read_table(path: Path, delimiter: str, id_column: str, dim: int, name: str) -> Vectors:
    """A tsv/csv with a header line: the id column and one column per dimension."""
    header = list(pd.read_csv(path, sep=delimiter, nrows=0).columns)
    require_column(path, header, id_column, f"{name}.id_column", "the track ids")
    value_columns = [column for column in header if column != id_column]
    if len(value_columns) != dim:
        raise PrecomputedFileError(
            f"{path}: {len(value_columns)} value columns besides {id_column!r} but {name}.dim is {dim}; "
            f"set {name}.dim: {len(value_columns)}, or drop the columns that are not dimensions"
        )
    try:
        # Strings first: float() parses every value exactly, and a bad cell can be found by its line.
        frame = pd.read_csv(path, sep=delimiter, dtype=str, keep_default_na=False)
    except pd.errors.ParserError as error:
        raise PrecomputedFileError(
            f"{path}: {str(error).strip()}; every line needs its track id and {dim} values"
        ) from error
    values = frame[value_columns].to_numpy()
    try:
        matrix = values.astype(np.float64)
    except ValueError:
        row, column = first_non_number(values)
        raise PrecomputedFileError(
            f"{path}: {table_line(row)}, column {value_columns[column]!r}: {values[row, column]!r} is not a number; "
            "fix the value, or drop the row (its track is then masked)"
        ) from None
    return Vectors(path, frame[id_column].to_numpy(dtype=str), to_float32(matrix), table_line)


def first_non_number(values: np.ndarray) -> tuple[int, int]:
    """(row, column) of the first cell that float() refuses (an empty field, a word)."""
    for (row, column), cell in np.ndenumerate(values):
        try:
            float(cell)
        except ValueError:
            return row, column
    raise AssertionError("every cell parses as a number")


def read_npy(path: Path, ids_path: Path, id_column: str, dim: int, name: str) -> Vectors:
    """The original study's layout: a matrix and a table of its track ids in row order."""
    matrix = np.load(path, allow_pickle=False)
    if matrix.ndim != 2 or matrix.shape[1] != dim:
        raise PrecomputedFileError(
            f"{path}: shape {matrix.shape}, but {name}.dim is {dim}; every row must hold {dim} values "
            f"(set {name}.dim to the matrix's width, or export a 2-D matrix)"
        )
    ids = read_ids(ids_path, id_column, name)
    if len(ids) != len(matrix):
        raise PrecomputedFileError(
            f"{ids_path}: {len(ids)} ids for the {len(matrix)} rows of {path}; "
            "the ids file needs one id per matrix row, in row order"
        )
    return Vectors(path, ids.to_numpy(dtype=str), to_float32(matrix), array_row)


def read_parquet(path: Path, id_column: str, vector_column: str, dim: int, name: str) -> Vectors:
    """A parquet table: the id column and a list-of-numbers column."""
    columns = pq.read_schema(path).names
    require_column(path, columns, id_column, f"{name}.id_column", "the track ids")
    require_column(path, columns, vector_column, f"{name}.vector_column", "the vectors")
    table = pq.read_table(path, columns=[id_column, vector_column])
    vectors = table.column(vector_column).combine_chunks()
    lengths = pc.list_value_length(vectors).fill_null(-1).to_numpy()
    wrong = np.flatnonzero(lengths != dim)
    ids = table.column(id_column).to_pandas().astype(str).to_numpy(dtype=str)
    if len(wrong):
        row = int(wrong[0])
        found = "no vector" if lengths[row] < 0 else f"{lengths[row]} values"
        raise PrecomputedFileError(
            f"{path}: {array_row(row)} (track {ids[row]}) holds {found} but {name}.dim is {dim}; "
            f"every row needs {dim} values (fix the row, or set {name}.dim if the whole file has another width)"
        )
    flat = pc.list_flatten(vectors).to_numpy(zero_copy_only=False).astype(np.float64)
    return Vectors(path, ids, to_float32(flat.reshape(len(ids), dim)), array_row)


def to_float32(matrix: np.ndarray) -> np.ndarray:
    """float32, as every embedding matrix; values beyond its range become Inf, which `align` refuses."""
    with np.errstate(over="ignore"):
        return matrix.astype(np.float32)


@dataclass(frozen=True)
class Alignment:
    """A file's vectors in the catalogue's row order."""

    embeddings: np.ndarray  # (tracks, dim); NaN rows for the tracks the file lacks
    missing: np.ndarray  # catalogue rows the file lacks
    unknown_ids: np.ndarray  # the file's ids that are no track of the catalogue


def align(vectors: Vectors, track_ids: pd.Series) -> Alignment:
    """Row i of the result is track i of `track_ids`; refuses a duplicate id, NaN or Inf in a row it uses."""
    catalogue = pd.Index(track_ids.astype(str))
    in_catalogue = catalogue.get_indexer(vectors.ids) >= 0
    if not in_catalogue.any():
        raise PrecomputedFileError(
            f"{vectors.path}: none of its {len(vectors.ids)} track ids is a track of tracks.parquet "
            f"(its first: {str(vectors.ids[0]) if len(vectors.ids) else None!r}, "
            f"the catalogue's first: {catalogue[0]!r}); "
            "the id column or the dataset is not the one in use"
        )
    used = np.flatnonzero(in_catalogue)
    check_unique(vectors, used)
    check_finite(vectors, used)
    source_row = pd.Index(vectors.ids[used]).get_indexer(catalogue)
    found = source_row >= 0
    embeddings = np.full((len(catalogue), vectors.matrix.shape[1]), np.nan, dtype=np.float32)
    embeddings[found] = vectors.matrix[used[source_row[found]]]
    return Alignment(embeddings, np.flatnonzero(~found), vectors.ids[~in_catalogue])


def check_unique(vectors: Vectors, used: np.ndarray) -> None:
    ids = pd.Series(vectors.ids[used])
    repeated = ids.duplicated(keep="first").to_numpy()
    if repeated.any():
        again = int(np.flatnonzero(repeated)[0])
        first = int(np.flatnonzero((ids == ids.iloc[again]).to_numpy())[0])
        raise PrecomputedFileError(
            f"{vectors.path}: {vectors.locate(int(used[again]))} repeats track {ids.iloc[again]} of "
            f"{vectors.locate(int(used[first]))}; keep one row per track id"
        )


def check_finite(vectors: Vectors, used: np.ndarray) -> None:
    bad = ~np.isfinite(vectors.matrix[used])
    if bad.any():
        at, column = np.argwhere(bad)[0]
        row = int(used[at])
        value = vectors.matrix[row, column]
        what = "NaN (or a missing value)" if np.isnan(value) else f"{value} (Inf, or beyond the float32 range)"
        raise PrecomputedFileError(
            f"{vectors.path}: {vectors.locate(row)} (track {vectors.ids[row]}) holds {what} in dimension {column}; "
            "fix the value, or drop the row (its track is then masked)"
        )


def check_section(name: str, section: dict) -> None:
    """Refuse a params.yaml section that cannot describe a precomputed file, naming the key and the fix."""
    unknown = sorted(set(section) - set(SETTINGS))
    if unknown:
        raise ValueError(f"{name}.{unknown[0]}: not a setting of a precomputed backend; allowed: {', '.join(SETTINGS)}")
    for key in ("format", "file", "dim"):
        if section.get(key) is None:
            raise ValueError(
                f"{name}.{key} is missing: a precomputed backend needs format, file and dim (docs/backends.md)"
            )
    if section["format"] not in FORMATS:
        raise ValueError(f"{name}.format={section['format']!r}; allowed: {', '.join(FORMATS)}")
    if not isinstance(section["dim"], int) or section["dim"] < 1:
        raise ValueError(f"{name}.dim={section['dim']!r}; must be the vectors' width, an integer >= 1")
    if (section["format"] == "npy") != (section.get("ids") is not None):
        raise ValueError(f"{name}.ids: the npy format, and only it, names the file of its track ids in row order")
    for key in ("file", "ids"):
        value = section.get(key)
        if value is not None and (Path(value).is_absolute() or ".." in Path(value).parts):
            raise ValueError(
                f"{name}.{key}={value!r}: name a file inside {paths.precomputed(name)}/ "
                "(copy, link or `dvc import-url` it there), "
                "so that DVC sees when it changes"
            )


class PrecomputedBackend(Backend):
    """Vectors read from data/precomputed/<name>/ instead of computed from audio."""

    covers_all_tracks = False

    def __init__(
        self,
        name: str,
        format: str,
        file: str,
        dim: int,
        id_column: str = "id",
        ids: str | None = None,
        vector_column: str = "vector",
    ):
        check_section(name, {"format": format, "file": file, "dim": dim, "ids": ids})
        self.name = name
        self.format = format
        self.dim = dim
        self.id_column = id_column
        self.vector_column = vector_column
        self.file = paths.precomputed(name) / file
        self.ids_file = paths.precomputed(name) / ids if ids is not None else None
        self.counts: dict = {}

    def read(self) -> Vectors:
        for path in filter(None, (self.file, self.ids_file)):
            if not path.is_file():
                raise FileNotFoundError(f"{self.name}: {path} does not exist; put the file there (docs/backends.md)")
        if self.format in DELIMITERS:
            return read_table(self.file, DELIMITERS[self.format], self.id_column, self.dim, self.name)
        if self.format == "npy":
            assert self.ids_file is not None  # check_section: the npy format, and only it, names its ids file
            return read_npy(self.file, self.ids_file, self.id_column, self.dim, self.name)
        return read_parquet(self.file, self.id_column, self.vector_column, self.dim, self.name)

    def embed_tracks(
        self,
        tracks: pd.DataFrame,
        max_seconds: float = 30.0,
        batch_size: int = 32,
        failures: dict[int, str] | None = None,
    ) -> np.ndarray:
        vectors = self.read()
        alignment = align(vectors, tracks["track_id"])
        reason = f"not in {self.file}"
        if failures is not None:
            failures.update({int(row): reason for row in alignment.missing})
        elif len(alignment.missing):
            row = int(alignment.missing[0])
            raise ExtractionError(
                f"{self.name}: track {tracks['track_id'].iloc[row]} (row {row} of tracks.parquet) is {reason}"
            )
        if len(alignment.missing):
            log.warning(
                "%s: %d of %d tracks are not in %s; they are masked",
                self.name,
                len(alignment.missing),
                len(tracks),
                self.file,
            )
        self.counts = {
            "file": str(self.file),
            "file_rows": len(vectors.ids),
            "ids_not_in_catalogue": len(alignment.unknown_ids),
            "ids_not_in_catalogue_first": sorted(alignment.unknown_ids.tolist())[:LISTED_UNKNOWN_IDS],
        }
        return alignment.embeddings

    def summary(self) -> dict:
        return self.counts


def write(ids: np.ndarray, matrix: np.ndarray, format: str, path: Path, ids_path: Path | None = None) -> None:
    """Write vectors the way `PrecomputedBackend` reads them: column `id`, then 0..dim-1 (tsv/csv,
    9 significant digits, which give back every float32 exactly), the matrix plus an ids table
    with column `id` (npy), or columns `id` and `vector` (parquet)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    id_series = pd.Series(np.asarray(ids, dtype=str), name="id")
    if format in DELIMITERS:
        frame = pd.concat([id_series, pd.DataFrame(matrix, columns=[str(i) for i in range(matrix.shape[1])])], axis=1)
        frame.to_csv(path, sep=DELIMITERS[format], index=False, float_format="%.9g")
    elif format == "npy":
        if ids_path is None:
            raise ValueError("the npy format writes its track ids to a second file: pass ids_path")
        np.save(path, matrix)
        id_series.to_frame().to_csv(ids_path, sep="\t" if ids_path.suffix == ".tsv" else ",", index=False)
    elif format == "parquet":
        pd.DataFrame({"id": id_series, "vector": list(matrix)}).to_parquet(path, index=False)
    else:
        raise ValueError(f"format={format!r}; allowed: {', '.join(FORMATS)}")
