"""The benchmark's conclusions at its default, at four times the segmenter's budget and at twice
the resolution, side by side (docs/method.md §9, docs/results.md).

    python bench/robustness.py DEFAULT BUDGET RESOLUTION [--names default 4x 128px]
                               [--markdown table.md]

Each argument is the summary over seeds of a finished project (`summary.json` or
`summary_ablation.json` in its output folder) whose rows include ROWS and `full`, with round 1
and the retraining on refined labels: config.yaml, config/benchmark_4x.yaml and
config/benchmark_128px.yaml, e.g. with `run_experiments` naming every row. For every row and
stage: the paired difference to the baseline (mean and two-sided 95 % t-interval over the
seeds) in each setting. A conclusion **holds**
where the difference has the same sign in all three and its interval excludes 0 in all three
or in none; otherwise it depends on the budget or the resolution, and the column that differs
is named. The `full` row's segmentation (mean ± standard deviation over the seeds) and every
row's segmentation as % of `full` (the baseline's included) are given beside them. Prints one
JSON object; with --markdown also the table.
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from i2crc_core.report.markdown import table  # noqa: E402

ROWS = ("cad", "csd", "i2crc", "cad_no_bg")
SEGMENTATION = {"seg_val_round1": "round 1", "seg_val_retrain_refined": "+LR"}
STAGES = {
    "cam_only_miou": "CAM-only, best t",
    "pseudo_train_miou_ignore_as_bg": "pseudo labels, ignore as bg",
    "seg_val_round1": "seg round 1",
    "seg_val_retrain_refined": "seg +LR",
}


def load(summary: Path) -> dict:
    return json.loads(summary.read_text())["aggregate"]


def difference(aggregate: dict, row: str, column: str) -> dict:
    paired = aggregate[row][column]["vs_baseline"]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("summaries", type=Path, nargs=3)
    parser.add_argument("--names", nargs=3, default=["default", "4x", "128px"])
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()
    aggregates = {name: load(path) for name, path in zip(args.names, args.summaries)}
    report = {"settings": dict(zip(args.names, map(str, args.summaries))), "rows": {}, "full": {}}
    for name, aggregate in aggregates.items():
        full = aggregate["full"]["seg_val_round1"]
        report["full"][name] = {"mean": 100 * full["mean"], "std": 100 * full["std"]}
    report["of_full"] = {
        row: {
            label: {
                name: 100 * aggregates[name][row][f"{key}_of_full"]["mean"] for name in args.names
            }
            for key, label in SEGMENTATION.items()
        }
        for row in ("baseline", *ROWS)
    }
    for row in ROWS:
        report["rows"][row] = {}
        for column, label in STAGES.items():
            cells = {name: difference(aggregates[name], row, column) for name in args.names}
            report["rows"][row][label] = {"cells": cells, **verdict(cells)}
    print(json.dumps(report, indent=1))
    if args.markdown:
        args.markdown.write_text(markdown(report, args.names))


def cell(value: dict) -> str:
    if value["low"] is None:
        return f"{value['mean']:+.1f}"
    return f"{value['mean']:+.1f} [{value['low']:+.1f}, {value['high']:+.1f}]"


def markdown(report: dict, names) -> str:
    header = ["row", "stage", *names, "holds"]
    full = report["full"]
    rows = [
        [
            "full",
            "seg round 1, mIoU",
            *(f"{full[n]['mean']:.1f} ± {full[n]['std']:.1f}" for n in names),
            "",
        ]
    ]
    for row, stages in report["of_full"].items():
        for label, shares in stages.items():
            rows.append([row, f"seg {label}, % of full", *(f"{shares[n]:.1f}" for n in names), ""])
    for row, stages in report["rows"].items():
        for label, result in stages.items():
            holds = "yes" if result["holds"] else "no: " + ", ".join(result["differs_in"])
            rows.append(
                [row, f"{label} − baseline", *(cell(result["cells"][n]) for n in names), holds]
            )
    return "\n".join(table(header, rows, labels=2)) + "\n"


if __name__ == "__main__":
    main()
