"""Stage: every seed's results side by side, with their mean, sample standard deviation and
paired difference to the baseline.

The per-seed summaries (stages/summary.py) come from one DAG that runs every seed of `seeds`;
this stage reads their `summary.json` files and writes
- a JSON: `seeds`, `per_seed` (seed -> its summary) and `aggregate`, {experiment: {column:
  stats}} with stats {"mean", "std", "values", "n"} over the seeds with a value, as fractions
  (`std` the sample standard deviation, 0 for one seed). Thresholds (chosen values, not
  scores) are left out. A column of an experiment other than `baseline` and `full` (the fully
  supervised ceiling, no method of its own) also has stats["vs_baseline"]: the per-seed
  difference experiment − baseline over the seeds where both have a value, {"mean", "std",
  "values", "n", "ci95": [lo, hi]}, the two-sided 95 % t-interval
  mean ± t(0.975, n−1)·std/√n ([null, null] for n < 2); absent where no seed has both.
- a Markdown: per metric and experiment `mean ± sd (each seed's value)` in percent, then per
  metric and compared experiment the paired difference, `mean [lo, hi] (n=…)` in percentage
  points.
"""

import json
import math
import statistics
from pathlib import Path

from scipy import stats as scipy_stats

from ..infra.config import FULL_SUPERVISION
from ..infra.fileio import write_json, write_text
from ..report import markdown

BASELINE = "baseline"


def _scores(row: dict) -> dict[str, float]:
    """The row's numeric columns, thresholds left out."""
    return {
        column: float(value)
        for column, value in row.items()
        if isinstance(value, (int, float)) and not column.endswith("threshold")
    }


def _stats(numbers: list[float]) -> dict:
    return {
        "mean": statistics.fmean(numbers),
        "std": statistics.stdev(numbers) if len(numbers) > 1 else 0.0,
        "values": numbers,
        "n": len(numbers),
    }


def paired_difference(differences: list[float]) -> dict:
    """The stats of per-seed differences with "ci95", the two-sided 95 % t-interval of their
    mean."""
    stats = _stats(differences)
    if stats["n"] < 2:
        return {**stats, "ci95": [None, None]}
    quantile = float(scipy_stats.t.ppf(0.975, stats["n"] - 1))
    half = quantile * stats["std"] / math.sqrt(stats["n"])
    return {**stats, "ci95": [stats["mean"] - half, stats["mean"] + half]}


def aggregate_runs(summaries: dict[int, dict]) -> dict[str, dict[str, dict]]:
    """{experiment: {column: stats}} over the seeds' summaries, as in the module docstring."""
    scores = [
        {experiment: _scores(row) for experiment, row in summary["experiments"].items()}
        for summary in summaries.values()
    ]
    values: dict[str, dict[str, list]] = {}
    for rows in scores:
        for experiment, row in rows.items():
            for column, value in row.items():
                values.setdefault(experiment, {}).setdefault(column, []).append(value)
    table = {
        experiment: {column: _stats(numbers) for column, numbers in columns.items()}
        for experiment, columns in values.items()
    }
    for experiment, columns in table.items():
        if experiment in (BASELINE, FULL_SUPERVISION):
            continue
        pairs = [
            (rows[experiment], rows[BASELINE])
            for rows in scores
            if experiment in rows and BASELINE in rows
        ]
        for column, stats in columns.items():
            differences = [
                row[column] - baseline[column]
                for row, baseline in pairs
                if column in row and column in baseline
            ]
            if differences:
                stats["vs_baseline"] = paired_difference(differences)
    return table


def paired_cell(paired: dict) -> str:
    """`mean [lo, hi] (n=…)` in signed percentage points, without the interval below 2 seeds."""
    low, high = paired["ci95"]
    interval = "" if low is None else f" [{100 * low:+.1f}, {100 * high:+.1f}]"
    return f"{100 * paired['mean']:+.1f}{interval} (n={paired['n']})"


def _spread_cell(stats: dict) -> str:
    if stats["n"] == 1:
        return f"{100 * stats['mean']:.1f}"
    each = " / ".join(f"{100 * value:.1f}" for value in stats["values"])
    return f"{100 * stats['mean']:.1f} ± {100 * stats['std']:.1f} ({each})"


def _paired_or_none(stats: dict) -> str | None:
    return paired_cell(stats["vs_baseline"]) if "vs_baseline" in stats else None


def _grid(table: dict, experiments: list[str], cell) -> list[str]:
    """Experiments as columns, metrics as rows; `cell(stats)` gives a cell, None for —."""
    columns = dict.fromkeys(
        c
        for experiment in experiments
        for c in table[experiment]
        if cell(table[experiment][c]) is not None
    )
    rows = [
        [
            column,
            *(
                (cell(table[experiment][column]) if column in table[experiment] else None) or "—"
                for experiment in experiments
            ),
        ]
        for column in columns
    ]
    return markdown.table(["metric", *experiments], rows)


def aggregate_markdown(table: dict[str, dict[str, dict]], seeds: list[int]) -> str:
    """`mean ± sd (each seed's value)` per metric and experiment; below it, where any, the
    paired differences to the baseline."""
    text = (
        f"{len(seeds)} seed{'s' if len(seeds) > 1 else ''} ({', '.join(map(str, seeds))}): "
        "mean ± sample standard "
        "deviation (each seed's value), mIoU etc. in percent.\n\n"
        + "\n".join(_grid(table, list(table), _spread_cell))
        + "\n"
    )
    compared = [
        experiment
        for experiment, columns in table.items()
        if any("vs_baseline" in stats for stats in columns.values())
    ]
    if not compared:
        return text
    return (
        text + "\nPaired difference to the baseline (percentage points): mean [95 % "
        "t-interval] (n), per seed the experiment's value minus the baseline's over the n "
        "seeds where both have one; a paired t-interval, none for one seed.\n\n"
        + "\n".join(_grid(table, compared, _paired_or_none))
        + "\n"
    )


def run(*, summary_paths: list, seeds: list[int], json_path, markdown_path):
    summaries = {
        seed: json.loads(Path(path).read_text()) for seed, path in zip(seeds, summary_paths)
    }
    table = aggregate_runs(summaries)
    write_json(
        json_path,
        {
            "seeds": seeds,
            "aggregate": table,
            "per_seed": {str(seed): s for seed, s in summaries.items()},
        },
    )
    write_text(markdown_path, "# I2CRC results over seeds\n\n" + aggregate_markdown(table, seeds))
