"""The whole-study stages of a past full run of music4all_scale.py, from the table it printed.

A full run takes hours, so benchmarks/results/ keeps the per-stage estimate of the last one
for benchmarks/cluster_time.py. This reads that run's table from docs/scale.md's "Measured"
section (the first table there, and the date in its first line) and feeds it to the same
estimate the benchmark prints (music4all_scale.study_stages), which it prints again to
compare with the docs' "whole study on this machine" table.

Usage: python benchmarks/study_times_from_docs.py [--docs docs/scale.md] [--out PATH]
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from pathlib import Path

import numpy as np

import music4all_scale as scale

ROOT = Path(__file__).resolve().parents[1]


def measured_section(docs: str) -> tuple[str, str]:
    """The run's date and the text of the "### Measured" section up to its first subsection or note."""
    section = docs.split("\n### Measured\n", 1)[1]
    section = re.split(r"\n(?:#|\?\?\? )", section, maxsplit=1)[0]
    return re.search(r"On (\d{4}-\d{2}-\d{2})", section).group(1), section


def table_rows(section: str) -> list[tuple[str, str, float | None, str]]:
    """(stage, width, wall s, note) of the section's first table, as format_row wrote them."""
    lines = section[section.index("| stage | width |") :].split("\n\n", 1)[0].splitlines()[2:]
    rows = []
    for line in lines:
        stage, width, wall, _peak, _floor, _ratio, note = (cell.strip() for cell in line.strip("|").split(" | "))
        number = wall.removesuffix(" (est.)").replace(",", "")
        rows.append((stage, width, None if number == "—" else float(number), note))
    return rows


def report_and_trained(
    rows: list[tuple[str, str, float | None, str]],
) -> tuple[scale.Report, dict[str, dict[int, scale.TrainTimes]]]:
    """The rows as the benchmark's Report, and each Shallow and BERT4Rec width's pieces: the
    epoch row (with its TFLOP), the per-epoch validation and the final ranking."""
    report = scale.Report(rows=[scale.Row(stage, width, wall) for stage, width, wall, _ in rows])
    pieces = {(stage, width): (wall, note) for stage, width, wall, note in rows}
    trained: dict[str, dict[int, scale.TrainTimes]] = {}
    for model in scale.TRAINED:
        for width in sorted({int(w) for stage, w, *_ in rows if stage == f"├ {model} training epoch"}):
            epoch, note = pieces[f"├ {model} training epoch", str(width)]
            tflop = float(re.search(r"([\d,.]+) TFLOP", note).group(1).replace(",", ""))
            validation = pieces[f"├ {model} per-epoch validation", str(width)][0]
            ranking = pieces[f"└ {model} final ranking", str(width)][0]
            trained.setdefault(model, {})[width] = scale.TrainTimes(tflop * 1e12, epoch, validation, ranking)
    return report, trained


def fitted_flops(trained: dict[str, dict[int, scale.TrainTimes]]) -> dict[str, np.poly1d]:
    """Each model's epoch FLOPs as a w^2 + b w, least squares on the table's rounded TFLOP. Both
    counts have that form on a fixed split (hidden_dim 0: the model is as wide as the vectors),
    so this gives the unmeasured widths the FLOPs the benchmark would have computed."""
    fits = {}
    for model, by_width in trained.items():
        widths = np.array(list(by_width), dtype=np.float64)
        flops = np.array([times.flops for times in by_width.values()])
        fits[model] = np.poly1d([*np.polyfit(widths, flops / widths, 1), 0.0])
    return fits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=Path, default=ROOT / "docs" / "scale.md")
    parser.add_argument("--out", type=Path, help="default benchmarks/results/study_times_<the run's date>.json")
    args = parser.parse_args()
    date, section = measured_section(args.docs.read_text())
    report, trained = report_and_trained(table_rows(section))
    fits = fitted_flops(trained)
    # The measured points on the same curve as the widths between them, so a measured width gets its own time back.
    trained = {
        model: {w: dataclasses.replace(times, flops=fits[model](w)) for w, times in by_width.items()}
        for model, by_width in trained.items()
    }
    max_epochs = scale.study_max_epochs()
    stages = scale.study_stages(report, trained, lambda model, width: fits[model](width), max_epochs)
    scale.print_study_estimate(stages, max_epochs)
    header = {
        "source": f"docs/scale.md, section Measured: the table of the full run of {date} "
        "(benchmarks/music4all_scale.py --scale 1 --widths 200 768 1024 4800), through "
        "benchmarks/study_times_from_docs.py; epoch FLOPs at the unmeasured widths fitted to its TFLOP column",
        "date": date,
        "max_epochs": max_epochs,
        "not_counted": scale.NOT_COUNTED,
    }
    out = args.out or ROOT / "benchmarks" / "results" / f"study_times_{date}.json"
    scale.write_study_times(out, stages, header)
    print(f"\nwrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")


if __name__ == "__main__":
    main()
