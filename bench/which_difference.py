"""Which difference from the authors' code matters: each method-level difference switched
alone from the pipeline's earlier behaviour to the authors', on the built-in benchmark.

    python bench/which_difference.py [--seeds 0 1 2 3 4] [--work runs/which_difference]
                                     [--cores all] [--markdown table.md] [--configfile base.yaml]

The reference `earlier` is the benchmark as it ran before the authors' code was followed
(docs/method.md §10): PyTorch's head initialisation, SGD without Nesterov, a flipped training
input, CAMs normalised after upsampling, CAMs as stored in the OAA rule, Eq. 10 on every image.
Each variant switches one of these, or CAD's weighting, to the authors' choice and leaves the
rest as in `earlier`. Every project runs the rows baseline, cad and i2crc to the round-1
segmenter (and the refinement's round for the switch that only refinement reads) over the
seeds; a variant starts as a copy of the finished reference (bench/projects.py), so Snakemake
retrains only what its switch changes.

For each variant, row r in (cad, i2crc), column m and seed s: the gap to the baseline
g = m(r) - m(baseline), then the effect g(variant) - g(earlier); printed as its mean and
two-sided 95 % t-interval over the seeds (paired: each seed's own data and pretraining), with
the `earlier` gaps themselves. One JSON object; with --markdown also a table.
"""

import argparse
import json
import math
import statistics
import sys
from pathlib import Path

import yaml
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import projects  # noqa: E402
from i2crc_core.infra.config import deep_update  # noqa: E402
from i2crc_core.infra.provenance import cpu_model  # noqa: E402
from i2crc_core.report.markdown import table  # noqa: E402

ROWS = ("baseline", "cad", "i2crc")
# The benchmark before it followed the authors' code where the paper is silent.
EARLIER = {
    "classifier": {"head_init": "pytorch", "nesterov": False, "flip": True},
    "cams": {"normalise": "image"},
    "pseudo_labels": {"stretch_cams": False},
    "refinement": {"multi_class_only": False},
}
# docs/method.md §10's rows that the benchmark's method steps read, each switched alone.
SWITCHES = {
    "A1 CAD weighted by M²": {"losses": {"cad_weighting": "squared"}},
    "A2 head init N(0, 2/(k²·out))": {"classifier": {"head_init": "fan_out_normal"}},
    "A3 SGD with Nesterov": {"classifier": {"nesterov": True}},
    "A4 no training flip": {"classifier": {"flip": False}},
    "A5 CAMs normalised per map, bicubic": {"cams": {"normalise": "attention"}},
    "A6 CAMs stretched min-max": {"pseudo_labels": {"stretch_cams": True}},
    "B3 Eq. 10 on multi-class images only": {"refinement": {"multi_class_only": True}},
}
# (metrics file, key, column name): CAM-only, pseudo labels, round-1 segmentation; and for the
# switch that only the refinement reads, the refined labels and the retrained segmenter.
ROUND1 = [
    ("cams", "best_miou", "CAM-only, best t"),
    ("labels_pseudo", "miou_ignore_as_background", "pseudo labels, ignore as bg"),
    ("segmentation_pseudo", "miou_ignore_as_background", "seg round 1"),
]
ROUND2 = [
    ("labels_refined", "miou_ignore_as_background", "refined labels, ignore as bg"),
    ("segmentation_refined", "miou_ignore_as_background", "seg +LR"),
]


def columns(name: str) -> list:
    return ROUND1 + ROUND2 if name.startswith("B3") else ROUND1


def targets(seeds, metrics) -> list[str]:
    return [
        f"results/seed{seed}/{row}/metrics/{name}.json"
        for seed in seeds
        for row in ROWS
        for name, _, _ in metrics
    ]


def value(project: Path, seed: int, row: str, name: str, key: str) -> float:
    data = json.loads((project / f"results/seed{seed}/{row}/metrics/{name}.json").read_text())
    return 100 * float(data[key])


def interval(values: list[float]) -> dict:
    mean = statistics.fmean(values)
    if len(values) < 2:
        return {"mean": round(mean, 2), "low": None, "high": None, "values": values}
    half = stats.t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return {
        "mean": round(mean, 2),
        "low": round(mean - half, 2),
        "high": round(mean + half, 2),
        "values": [round(v, 2) for v in values],
    }


def gaps(project: Path, seeds, row: str, name: str, key: str) -> list[float]:
    return [
        value(project, seed, row, name, key) - value(project, seed, "baseline", name, key)
        for seed in seeds
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--work", type=Path, default=projects.REPO / "runs" / "which_difference")
    parser.add_argument("--cores", default="all")
    parser.add_argument("--markdown", type=Path)
    parser.add_argument(
        "--configfile", nargs="*", default=[], help="under the study's overlays, e.g. a smaller set"
    )
    args = parser.parse_args()
    work = args.work.resolve()
    config = {"seeds": args.seeds, "run_experiments": list(ROWS)}

    def overlay(name: str, changes: dict) -> Path:
        path = work / "overlays" / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(deep_update(EARLIER, changes), sort_keys=False))
        return path

    earlier = work / "earlier"
    projects.run(
        earlier,
        targets(args.seeds, ROUND1 + ROUND2),
        configfiles=[*args.configfile, overlay("earlier", {})],
        config=config,
        cores=args.cores,
    )
    report = {
        "study": "which_difference",
        "seeds": args.seeds,
        "cpu": cpu_model(),
        "earlier": EARLIER,
        "earlier_gaps": {
            row: {
                label: interval(gaps(earlier, args.seeds, row, name, key))
                for name, key, label in ROUND1 + ROUND2
            }
            for row in ROWS[1:]
        },
        "effects": {},
    }
    for index, (name, changes) in enumerate(SWITCHES.items()):
        project = work / f"switch{index + 1}"
        projects.copy(earlier, project)
        projects.run(
            project,
            targets(args.seeds, columns(name)),
            configfiles=[*args.configfile, overlay(f"switch{index + 1}", changes)],
            config=config,
            cores=args.cores,
        )
        report["effects"][name] = {
            "changes": changes,
            **{
                row: {
                    label: interval(
                        [
                            now - before
                            for now, before in zip(
                                gaps(project, args.seeds, row, metric, key),
                                gaps(earlier, args.seeds, row, metric, key),
                            )
                        ]
                    )
                    for metric, key, label in columns(name)
                }
                for row in ROWS[1:]
            },
        }
    print(json.dumps(report, indent=1))
    if args.markdown:
        args.markdown.write_text(markdown(report))


def cell(summary: dict) -> str:
    if summary["low"] is None:
        return f"{summary['mean']:+.1f}"
    return f"{summary['mean']:+.1f} [{summary['low']:+.1f}, {summary['high']:+.1f}]"


def markdown(report: dict) -> str:
    labels = [label for _, _, label in ROUND1 + ROUND2]
    header = ["difference switched alone", "row", *labels]
    rows = [
        ["none (`earlier`): the gap to the baseline", row]
        + [cell(report["earlier_gaps"][row][label]) for label in labels]
        for row in ROWS[1:]
    ]
    for name, effect in report["effects"].items():
        for row in ROWS[1:]:
            rows.append(
                [name, row]
                + [cell(effect[row][label]) if label in effect[row] else "" for label in labels]
            )
    return "\n".join(table(header, rows, labels=2)) + "\n"


if __name__ == "__main__":
    main()
