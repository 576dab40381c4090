"""A precomputed backend's params.yaml section: vectors read from a file instead of computed from audio.

The section is named after the backend (e.g. `onion_mfcc:`) and its file(s) lie in
data/precomputed/<name>/ (audiorec.backends.precomputed, docs/backends.md). A section with a
`format` key names a precomputed backend; audiorec.config checks it with `where` set to its name.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from audiorec.settings.base import PositiveInt, Section


class PrecomputedSettings(Section):
    """Where a file of one vector per track id lies, in which format, and how wide its vectors are."""

    format: Literal["tsv", "csv", "npy", "parquet"]
    """`tsv` or `csv` (a header line, the id column, one column per dimension, in any order), `npy` (a 2-D matrix
    plus its ids), `parquet` (an id column and a list column)."""
    file: str
    """The file, inside `data/precomputed/<name>/`."""
    dim: PositiveInt
    """The vectors' width; a file of another width is refused."""
    id_column: str | None = None
    """The track-id column (of the ids file for `npy`); absent: `id`."""
    ids: str | None = Field(default=None, validate_default=True)  # checked when absent too: npy needs it
    """With `npy` only (and required there): the table of track ids in the matrix's row order (`.tsv`: tab-separated,
    otherwise comma), inside the same folder; absent for every other format."""
    vector_column: str | None = None
    """With `parquet`: the list column; absent: `vector`."""

    @field_validator("file", "ids")
    @classmethod
    def inside_folder(cls, value: str | None) -> str | None:
        """A path relative to data/precomputed/<name>/ and never leaving it, so that DVC tracks the file."""
        if value is not None and (PurePath(value).is_absolute() or ".." in PurePath(value).parts):
            raise PydanticCustomError(
                "precomputed_path",
                "name a file inside data/precomputed/<this section's name>/ (copy, link or `dvc import-url` it there), "
                "so that DVC sees when it changes",
            )
        return value

    @field_validator("ids")
    @classmethod
    def ids_with_npy_only(cls, value: str | None, info: ValidationInfo) -> str | None:
        """`ids` is set exactly when the format is npy."""
        format = info.data.get("format")
        if format is not None and (format == "npy") != (value is not None):
            raise PydanticCustomError(
                "npy_ids",
                "the npy format, and only it, names the file of its track ids in row order"
                + (": add ids: <the ids table>" if value is None else f": remove ids for the {format} format"),
            )
        return value
