"""The benchmark's conclusions at its default, at four times the segmenter's budget and at twice
the resolution, side by side (docs/method.md §9, docs/results.md).

    python bench/robustness.py DEFAULT BUDGET RESOLUTION [--names default 4x 128px]
                               [--markdown table.md]

Each argument is the summary over seeds of a finished project (`summary.json` or
`summary_ablation.json` in its output folder) whose rows include ROWS, `baseline` and `full`,
with round 1 and the retraining on refined labels: config.yaml, config/benchmark_4x.yaml and
config/benchmark_128px.yaml under the `ablation` target. A conclusion is a paired difference
over the seeds (mean, two-sided 95 % t-interval): every row against the baseline at every
stage, and the README's comparisons between rows and rounds (COMPARISONS). It **holds** where
the difference has the same sign in all three settings and its interval excludes 0 in all
three or in none; otherwise it depends on the budget or the resolution, and the settings that
differ from the first are named. The `full` row's segmentation (mean ± standard deviation over
the seeds), every row's segmentation as % of `full` and the share of its pseudo labels'
pixels that are ignored (means over the seeds) are given beside them. Prints one JSON
object; with --markdown also the table.
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from i2crc_core.report.markdown import table  # noqa: E402
from i2crc_core.stages.summary_seeds import paired_difference  # noqa: E402

ROWS = ("cad", "csd", "i2crc", "cad_no_bg")
STAGES = {
    "cam_only_miou": "CAM-only, best t",
    "pseudo_train_miou_ignore_as_bg": "pseudo labels, ignore as bg",
    "seg_val_round1": "seg round 1",
    "seg_val_retrain_refined": "seg +LR",
}
SCORES = {
    "seg_val_round1_of_full": "seg round 1, % of full",
    "seg_val_retrain_refined_of_full": "seg +LR, % of full",
    "pseudo_train_ignored_fraction": "pseudo labels ignored, %",
}
COMPARISONS = {
    "i2crc − cad, seg round 1": (("i2crc", "seg_val_round1"), ("cad", "seg_val_round1")),
    "i2crc − csd, seg round 1": (("i2crc", "seg_val_round1"), ("csd", "seg_val_round1")),
    "i2crc − cad_no_bg, seg round 1": (
        ("i2crc", "seg_val_round1"),
        ("cad_no_bg", "seg_val_round1"),
    ),
    **{
        f"{row}: seg +LR − round 1": ((row, "seg_val_retrain_refined"), (row, "seg_val_round1"))
        for row in ("baseline", *ROWS)
    },
}


def conclusions() -> dict:
    """{label: ((row, column), (row, column))}: every paired difference the report judges."""
    against_baseline = {
        f"{row}: {label} − baseline": ((row, column), ("baseline", column))
        for row in ROWS
        for column, label in STAGES.items()
    }
    return {**against_baseline, **COMPARISONS}


def difference(summary: dict, first: tuple, second: tuple) -> dict:
    """first − second over the seeds that have both, in percentage points."""
    values = []
    for result in summary["per_seed"].values():
        experiments = result["experiments"]
        try:
            values.append(experiments[first[0]][first[1]] - experiments[second[0]][second[1]])
        except KeyError:
            continue
    paired = paired_difference(values)
    low, high = paired["ci95"]
    return {
        "mean": 100 * paired["mean"],
        "low": None if low is None else 100 * low,
        "high": None if high is None else 100 * high,
        "n": paired["n"],
    }


def status(cell: dict) -> tuple[int, bool]:
    """(sign of the mean, whether the interval excludes 0)."""
    sign = (cell["mean"] > 0) - (cell["mean"] < 0)
    excludes = cell["low"] is not None and (cell["low"] > 0 or cell["high"] < 0)
    return sign, excludes


def verdict(cells: dict) -> dict:
    statuses = {name: status(cell) for name, cell in cells.items()}
    reference = next(iter(statuses.values()))
    differing = [name for name, value in statuses.items() if value != reference]
    return {"holds": not differing, "differs_in": differing}


def report(summaries: dict) -> dict:
    """{"full", "scores", "conclusions"} for {setting name: summary over seeds}."""
    aggregates = {name: summary["aggregate"] for name, summary in summaries.items()}
    result = {"full": {}, "scores": {}, "conclusions": {}}
    for name, aggregate in aggregates.items():
        full = aggregate["full"]["seg_val_round1"]
        result["full"][name] = {"mean": 100 * full["mean"], "std": 100 * full["std"]}
    for row in ("baseline", *ROWS):
        for column, label in SCORES.items():
            result["scores"][f"{row}: {label}"] = {
                name: 100 * aggregate[row][column]["mean"] for name, aggregate in aggregates.items()
            }
    for label, (first, second) in conclusions().items():
        cells = {name: difference(summary, first, second) for name, summary in summaries.items()}
        result["conclusions"][label] = {"cells": cells, **verdict(cells)}
    return result


def cell(value: dict) -> str:
    if value["low"] is None:
        return f"{value['mean']:+.1f}"
    return f"{value['mean']:+.1f} [{value['low']:+.1f}, {value['high']:+.1f}]"


def markdown(result: dict, names) -> str:
    full = result["full"]
    spread = [f"{full[name]['mean']:.1f} ± {full[name]['std']:.1f}" for name in names]
    rows = [["full: seg round 1, mIoU", *spread, ""]]
    for label, means in result["scores"].items():
        rows.append([label, *(f"{means[name]:.1f}" for name in names), ""])
    for label, judged in result["conclusions"].items():
        holds = "yes" if judged["holds"] else "no: " + ", ".join(judged["differs_in"])
        rows.append([label, *(cell(judged["cells"][name]) for name in names), holds])
    header = ["paired difference (points) or score", *names, "holds"]
    return "\n".join(table(header, rows, labels=1)) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("summaries", type=Path, nargs=3)
    parser.add_argument("--names", nargs=3, default=["default", "4x", "128px"])
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()
    summaries = {
        name: json.loads(path.read_text()) for name, path in zip(args.names, args.summaries)
    }
    result = {"settings": dict(zip(args.names, map(str, args.summaries))), **report(summaries)}
    print(json.dumps(result, indent=1))
    if args.markdown:
        args.markdown.write_text(markdown(result, args.names))


if __name__ == "__main__":
    main()
