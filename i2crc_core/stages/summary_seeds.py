"""Stage: every seed's results side by side, with their mean and sample standard deviation.

The per-seed summaries (stages/summary.py) come from one DAG that runs every seed of
`seeds`; this stage reads their `summary.json` files and writes one table: per metric and
experiment `mean ± sd` in percent and the value of each seed. Thresholds (chosen values, not
scores) are not averaged.
"""

import json
import statistics
from pathlib import Path

from ..fileio import atomic_path


def aggregate_runs(summaries: dict[int, dict]) -> dict[str, dict[str, dict]]:
    """{experiment: {column: {"mean", "std", "values", "n"}}} over the seeds' summaries;
    `std` is the sample standard deviation (0 for one seed)."""
    values: dict[str, dict[str, list]] = {}
    for summary in summaries.values():
        for experiment, row in summary["experiments"].items():
            for column, value in row.items():
                if isinstance(value, (int, float)) and not column.endswith("threshold"):
                    values.setdefault(experiment, {}).setdefault(column, []).append(float(value))
    return {
        experiment: {
            column: {"mean": statistics.fmean(numbers),
                     "std": statistics.stdev(numbers) if len(numbers) > 1 else 0.0,
                     "values": numbers, "n": len(numbers)}
            for column, numbers in columns.items()
        }
        for experiment, columns in values.items()
    }


def aggregate_markdown(table: dict[str, dict[str, dict]], seeds: list[int]) -> str:
    """Experiments as columns, metrics as rows: `mean ± sd (seed values)` in percent."""
    experiments = list(table)
    columns = list(dict.fromkeys(c for rows in table.values() for c in rows))
    lines = ["| metric | " + " | ".join(experiments) + " |", "|---|" + "---:|" * len(experiments)]
    for column in columns:
        cells = []
        for experiment in experiments:
            stats = table[experiment].get(column)
            if stats is None:
                cells.append("—")
            elif stats["n"] == 1:
                cells.append(f"{100 * stats['mean']:.1f}")
            else:
                each = " / ".join(f"{100 * value:.1f}" for value in stats["values"])
                cells.append(f"{100 * stats['mean']:.1f} ± {100 * stats['std']:.1f} ({each})")
        lines.append(f"| {column} | " + " | ".join(cells) + " |")
    return (f"Seeds {', '.join(map(str, seeds))}: mean ± sample standard deviation "
            "(each seed's value), mIoU etc. in percent.\n\n" + "\n".join(lines) + "\n")


def run(*, summary_paths: list, seeds: list[int], json_path, markdown_path):
    summaries = {seed: json.loads(Path(path).read_text()) for seed, path in zip(seeds, summary_paths)}
    table = aggregate_runs(summaries)
    with atomic_path(json_path) as tmp:
        tmp.write_text(json.dumps({"seeds": seeds, "aggregate": table,
                                   "per_seed": {str(seed): s for seed, s in summaries.items()}},
                                  indent=1))
    with atomic_path(markdown_path) as tmp:
        tmp.write_text("# I2CRC results over seeds\n\n" + aggregate_markdown(table, seeds))
