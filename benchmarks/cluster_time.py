"""The whole study's wall time on a cluster of N identical nodes, from its per-stage times.

Reads the per-stage estimate that benchmarks/music4all_scale.py writes with --study-times-out
(default: the committed one of the full run of 2026-12-01), each stage with its hours on one
node (the 2-core machine that measured it) and the stages it needs. A list scheduler places
the stages on N nodes: whenever a node is free it starts the ready stage with the longest path
to the end of the study (a stage holds one node for its whole duration; none is split across
nodes). Next to each wall time it prints the two lower bounds no schedule beats, the total work
over N and the critical path, and which of them the wall time runs into.

--gpu-speedup KIND=FACTOR (or KIND:MODEL=FACTOR, e.g. train:bert4rec=30) adds rows for nodes
whose stages of that kind take 1/FACTOR of their time; no GPU has measured these stages yet,
so those rows rest on the factors given, and there are none unless given.

Usage:
  python benchmarks/cluster_time.py                                   # 1, 8 and 32 nodes
  python benchmarks/cluster_time.py --nodes 1 2 4 --gpu-speedup train=20
  python benchmarks/cluster_time.py --times my_study_times.json
"""

from __future__ import annotations

import argparse
import heapq
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from graphlib import TopologicalSorter
from pathlib import Path

DEFAULT_TIMES = Path(__file__).resolve().parent / "results" / "study_times_2026-12-01.json"
SHOWN_SHARE = 0.01  # a measured stage under this share of the critical path is left out of its description


@dataclass(frozen=True)
class Schedule:
    wall: float  # hours until the last stage ends
    start: dict[str, float]  # hours from the beginning, per stage


@dataclass(frozen=True)
class Study:
    hours: dict[str, float]  # an unmeasured stage counts as 0
    needs: dict[str, list[str]]
    kinds: dict[str, str]  # "train", or "train:bert4rec" where the stage names a model
    unmeasured: list[str]
    header: dict


def dependents_of(needs: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    dependents: dict[str, list[str]] = {stage: [] for stage in needs}
    for stage, required in needs.items():
        for need in required:
            dependents[need].append(stage)
    return dependents


def bottom_levels(hours: Mapping[str, float], needs: Mapping[str, Sequence[str]]) -> dict[str, float]:
    """Each stage's longest path to the end of the study, its own hours included."""
    dependents = dependents_of(needs)
    level: dict[str, float] = {}
    for stage in reversed(list(TopologicalSorter(needs).static_order())):
        level[stage] = hours[stage] + max((level[after] for after in dependents[stage]), default=0.0)
    return level


def critical_path(hours: Mapping[str, float], needs: Mapping[str, Sequence[str]]) -> tuple[float, list[str]]:
    """The longest chain of stages, each needing the one before, and its hours: no number of
    nodes finishes the study sooner."""
    if not hours:
        return 0.0, []
    level, dependents = bottom_levels(hours, needs), dependents_of(needs)
    stage = max((stage for stage in hours if not needs[stage]), key=lambda s: (level[s], s))
    path = [stage]
    while dependents[stage]:
        stage = max(dependents[stage], key=lambda s: (level[s], s))
        path.append(stage)
    return level[path[0]], path


def list_schedule(hours: Mapping[str, float], needs: Mapping[str, Sequence[str]], nodes: int) -> Schedule:
    """Greedy list scheduling on `nodes` identical nodes: at every moment a node is free and a
    stage has all it needs, the node starts the ready stage with the longest path to the end
    of the study (ties by name, so the schedule is reproducible). Each stage runs on one node,
    uninterrupted. The wall time is at most total/nodes + critical path (Graham's bound)."""
    if nodes < 1:
        raise ValueError(f"nodes must be at least 1, not {nodes}")
    level, dependents = bottom_levels(hours, needs), dependents_of(needs)
    waiting = {stage: len(needs[stage]) for stage in hours}
    ready = [(-level[stage], stage) for stage, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    running: list[tuple[float, str]] = []  # (end, stage)
    start: dict[str, float] = {}
    now = 0.0
    while ready or running:
        while ready and len(running) < nodes:
            _, stage = heapq.heappop(ready)
            start[stage] = now
            heapq.heappush(running, (now + hours[stage], stage))
        now = running[0][0]
        # Every stage ending now frees its node before any is refilled, so the choice sees all that became ready.
        while running and running[0][0] == now:
            _, done = heapq.heappop(running)
            for after in dependents[done]:
                waiting[after] -= 1
                if waiting[after] == 0:
                    heapq.heappush(ready, (-level[after], after))
    return Schedule(max((start[stage] + hours[stage] for stage in hours), default=0.0), start)


def load_study(path: Path) -> Study:
    """The stages of a --study-times-out file; `hours: null` (not measured) counts as 0."""
    data = json.loads(path.read_text())
    stages = data["stages"]
    hours = {stage["stage"]: stage["hours"] or 0.0 for stage in stages}
    needs = {stage["stage"]: list(stage["needs"]) for stage in stages}
    unknown = sorted({need for required in needs.values() for need in required} - hours.keys())
    if unknown:
        raise ValueError(f"{path}: stages needed but not listed: {', '.join(unknown)}")
    kinds = {stage["stage"]: stage["kind"] + (f":{stage['model']}" if stage.get("model") else "") for stage in stages}
    unmeasured = [stage["stage"] for stage in stages if stage["hours"] is None]
    return Study(hours, needs, kinds, unmeasured, data.get("header", {}))


def sped_up(study: Study, speedups: Mapping[str, float]) -> dict[str, float]:
    """Hours with a KIND:MODEL or KIND factor applied to the stages of that kind (the first wins)."""

    def factor(kind: str) -> float:
        return speedups.get(kind, speedups.get(kind.split(":")[0], 1.0))

    return {stage: hours / factor(study.kinds[stage]) for stage, hours in study.hours.items()}


def dominant(
    hours: Mapping[str, float], needs: Mapping[str, Sequence[str]], nodes: int, unmeasured: Sequence[str]
) -> str:
    """What bounds the wall time on `nodes`: the critical path (its long stages, each after the
    unmeasured stages it needs), or else the total work (its largest stages' shares)."""
    total = sum(hours.values())
    length, path = critical_path(hours, needs)
    if length >= total / nodes:
        shown: list[str] = []
        for stage in path:
            # An unmeasured stage counts as 0 h, so the path may pass beside it (through split rather than
            # extract@jukebox); named before the stage that needs it, it shows where its hours would add.
            shown += [f"{need} (not measured)" for need in needs[stage] if need in unmeasured and need not in path]
            if stage in unmeasured or hours[stage] >= SHOWN_SHARE * length:
                shown.append(f"{stage} (not measured)" if stage in unmeasured else f"{stage} ({hours[stage]:,.1f} h)")
        return "critical path: " + " → ".join(shown)
    largest = sorted(hours, key=hours.__getitem__, reverse=True)[:2]
    return "total work: " + ", ".join(f"{stage} {hours[stage] / total:.0%}" for stage in largest)


def table_row(
    label: str, hours: Mapping[str, float], needs: Mapping[str, Sequence[str]], nodes: int, unmeasured: Sequence[str]
) -> str:
    total = sum(hours.values())
    wall = list_schedule(hours, needs, nodes).wall
    length, _ = critical_path(hours, needs)
    bound, name = max((total / nodes, "work / N"), (length, "critical path"))
    efficiency = total / (nodes * wall) if wall else 1.0
    return (
        f"| {label} | {wall:,.1f} h = {wall / 24:,.1f} days | {bound:,.1f} h ({name}) | {efficiency:.0%} | "
        f"{dominant(hours, needs, nodes, unmeasured)} |"
    )


def parse_speedup(text: str) -> tuple[str, float]:
    kind, _, factor = text.partition("=")
    if not kind or not factor or float(factor) <= 0:
        raise argparse.ArgumentTypeError(f"expected KIND=FACTOR with FACTOR > 0, e.g. train=20, not {text!r}")
    return kind, float(factor)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--times", type=Path, default=DEFAULT_TIMES, help="a music4all_scale.py --study-times-out file")
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument(
        "--gpu-speedup",
        type=parse_speedup,
        nargs="+",
        default=[],
        metavar="KIND=FACTOR",
        help=(
            "assumed: stages of KIND (train, extract, ... or train:bert4rec) take 1/FACTOR of their time on a GPU node"
        ),
    )
    args = parser.parse_args()
    study = load_study(args.times)
    total = sum(study.hours.values())
    print(
        f"{args.times.name}: {len(study.hours)} stages, {total:,.1f} h of work on one node "
        f"({study.header.get('source', 'no source given')})."
    )
    if study.unmeasured:
        print(f"Not measured, counted as 0 h: {', '.join(study.unmeasured)}.")
    print("\n| nodes | wall time | lower bound | efficiency | what dominates |\n|---|---|---|---|---|")
    for nodes in args.nodes:
        print(table_row(str(nodes), study.hours, study.needs, nodes, study.unmeasured))
    speedups = dict(args.gpu_speedup)
    if speedups:
        label = ", ".join(f"{kind} ÷{factor:g}" for kind, factor in speedups.items())
        for nodes in args.nodes:
            print(table_row(f"{nodes} GPU ({label})", sped_up(study, speedups), study.needs, nodes, study.unmeasured))
        print(
            "\nNo GPU has measured these stages yet: "
            "the GPU rows divide the CPU hours by the factors given, an assumption."
        )
    else:
        print(
            "\nNo GPU has measured these stages yet, so there are no GPU rows "
            "(--gpu-speedup KIND=FACTOR adds them, assumed)."
        )


if __name__ == "__main__":
    main()
