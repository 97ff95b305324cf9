"""Which difference from the authors' code matters: each method-level difference switched
alone from the pipeline's earlier behaviour to the authors', on the built-in benchmark.

    python bench/which_difference.py [--seeds 0 1 2 3 4] [--segmentation-seeds 0 1 2]
                                     [--work runs/which_difference] [--cores all]
                                     [--markdown table.md] [--configfile base.yaml]

The reference `earlier` is the benchmark as it ran before the authors' code was followed
(docs/method.md §10): PyTorch's head initialisation, SGD without Nesterov, a flipped training
input, CAMs normalised after upsampling, CAMs as stored in the OAA rule, Eq. 10 on every image.
Each variant switches one of these, or CAD's weighting, to the authors' choice and leaves the
rest as in `earlier`; a last one switches at once all that the defaults adopt. Every project
runs the rows baseline, cad and i2crc to the round-1 segmenter (and the refinement's round for
the variants that change the refinement) over the seeds; a variant starts as a copy of the
finished reference (bench/projects.py), so Snakemake retrains only what its switch changes. The
columns that need a trained segmenter cost most; --segmentation-seeds runs them on a subset of
the seeds (default: all). Every variant's CAM and pseudo-label columns are run before any
segmenter is trained, so a study that is stopped has its cheap columns complete; rerun with the
same arguments, it resumes where it stopped.

For each variant, row r in (cad, i2crc), column m and seed s: the gap to the baseline
g = m(r) - m(baseline), then the effect g(variant) - g(earlier); printed as its mean and
two-sided 95 % t-interval over the seeds (paired: each seed's own data and pretraining), with
the `earlier` gaps themselves. One JSON object; with --markdown also a table.
"""

import argparse
import functools
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
# The defaults adopt every switch but A1 (the paper's text states CAD's weighting by M): the
# variant with all of them at once is the step from `earlier` to the defaults.
TOGETHER = "A2–A6 and B3 together (the defaults)"
VARIANTS = {
    **SWITCHES,
    TOGETHER: functools.reduce(
        deep_update, [changes for name, changes in SWITCHES.items() if not name.startswith("A1")]
    ),
}
# (metrics file, key, column name): CAM-only, pseudo labels, round-1 segmentation; and for the
# variants that change the refinement, the refined labels and the retrained segmenter.
ROUND1 = [
    ("cams", "best_miou", "CAM-only, best t"),
    ("labels_pseudo", "miou_ignore_as_background", "pseudo labels, ignore as bg"),
    ("labels_pseudo", "ignored_fraction", "pseudo labels, ignored"),
    ("segmentation_pseudo", "miou_ignore_as_background", "seg round 1"),
]
ROUND2 = [
    ("labels_refined", "miou_ignore_as_background", "refined labels, ignore as bg"),
    ("segmentation_refined", "miou_ignore_as_background", "seg +LR"),
]


def columns(name: str) -> list:
    return ROUND1 + ROUND2 if "refinement" in VARIANTS[name] else ROUND1


# The metrics that exist only after a segmenter is trained.
SEGMENTER = {"segmentation_pseudo", "labels_refined", "segmentation_refined"}


def targets(seeds, metrics) -> list[str]:
    files = (
        f"results/seed{seed}/{row}/metrics/{name}.json"
        for seed in seeds
        for row in ROWS
        for name, _, _ in metrics
    )
    return list(dict.fromkeys(files))


def split(metrics) -> tuple[list, list]:
    """`metrics` as (those before the segmenter, those after it)."""
    return [m for m in metrics if m[0] not in SEGMENTER], [m for m in metrics if m[0] in SEGMENTER]


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
    parser.add_argument(
        "--segmentation-seeds",
        type=int,
        nargs="+",
        help="the seeds of the columns that need a trained segmenter (default: --seeds)",
    )
    parser.add_argument("--work", type=Path, default=projects.REPO / "runs" / "which_difference")
    parser.add_argument("--cores", default="all")
    parser.add_argument("--markdown", type=Path)
    parser.add_argument(
        "--configfile", nargs="*", default=[], help="under the study's overlays, e.g. a smaller set"
    )
    args = parser.parse_args()
    segmentation_seeds = args.segmentation_seeds or args.seeds
    if not set(segmentation_seeds) <= set(args.seeds):
        parser.error("--segmentation-seeds must be among --seeds")
    work = args.work.resolve()
    config = {"seeds": args.seeds, "run_experiments": list(ROWS)}

    def seeds_of(metric: str) -> list[int]:
        return segmentation_seeds if metric in SEGMENTER else args.seeds

    def run(project: Path, metrics, configfile: Path) -> None:
        before, after = split(metrics)
        projects.run(
            project,
            targets(args.seeds, before) + targets(segmentation_seeds, after),
            configfiles=[*args.configfile, configfile],
            config=config,
            cores=args.cores,
        )

    def effect(project: Path, row: str, metric: str, key: str) -> dict:
        seeds = seeds_of(metric)
        now, before = gaps(project, seeds, row, metric, key), gaps(earlier, seeds, row, metric, key)
        return interval([a - b for a, b in zip(now, before)])

    def overlay(name: str, changes: dict) -> Path:
        path = work / "overlays" / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(deep_update(EARLIER, changes), sort_keys=False))
        return path

    earlier = work / "earlier"
    run(earlier, ROUND1 + ROUND2, overlay("earlier", {}))
    variants = {}  # name: (project, its overlay)
    for index, (name, changes) in enumerate(VARIANTS.items()):
        folder = f"switch{index + 1}"
        variants[name] = (work / folder, overlay(folder, changes))
    for name, (project, configfile) in variants.items():
        projects.copy(earlier, project)
        run(project, split(columns(name))[0], configfile)
    for name, (project, configfile) in variants.items():
        run(project, columns(name), configfile)
    report = {
        "study": "which_difference",
        "seeds": args.seeds,
        "segmentation_seeds": segmentation_seeds,
        "cpu": cpu_model(),
        "earlier": EARLIER,
        "earlier_gaps": {
            row: {
                label: interval(gaps(earlier, seeds_of(name), row, name, key))
                for name, key, label in ROUND1 + ROUND2
            }
            for row in ROWS[1:]
        },
        "effects": {
            name: {
                "changes": changes,
                **{
                    row: {
                        label: effect(variants[name][0], row, metric, key)
                        for metric, key, label in columns(name)
                    }
                    for row in ROWS[1:]
                },
            }
            for name, changes in VARIANTS.items()
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
    seeds = ", ".join(map(str, report["seeds"]))
    segmentation_seeds = ", ".join(map(str, report["segmentation_seeds"]))
    note = (
        f"\nCAM-only and pseudo-label columns over seeds {seeds}; the columns after a trained "
        f"segmenter over seeds {segmentation_seeds}.\n"
    )
    return "\n".join(table(header, rows, labels=2)) + "\n" + note


if __name__ == "__main__":
    main()
