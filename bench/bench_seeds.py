"""The default benchmark over several seeds: results (mean ± spread), wall time, memory.

    python bench/bench_seeds.py [--seeds 0 1 2] [--cores all] [--aggregate-only]

Runs the default pipeline once per seed into results/seed{N} (each a complete, independent
run; Snakemake skips a seed that is already finished), then prints one JSON object: per seed
the wall time, the no-op rerun time and the peak memory of any job; per rule the mean wall
time from the `benchmark:` files; and the summary columns aggregated over seeds. It also writes
results/seeds.md with the table.
"""

import argparse
import csv
import json
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).parent / "snakemake"


def aggregate_runs(summaries: list[dict]) -> dict[str, dict[str, dict]]:
    """Mean, sample standard deviation, min and max of every numeric column over runs.

    `summaries` are `summary.json` contents of runs that differ only in their seed.
    Returns {experiment: {column: {"mean", "std", "min", "max", "n"}}}.
    """
    values = defaultdict(lambda: defaultdict(list))
    for summary in summaries:
        for experiment, row in summary["experiments"].items():
            for column, value in row.items():
                if isinstance(value, (int, float)) and not column.endswith("threshold"):
                    values[experiment][column].append(float(value))
    table = {}
    for experiment, columns in values.items():
        table[experiment] = {}
        for column, numbers in columns.items():
            count = len(numbers)
            mean = sum(numbers) / count
            spread = (sum((v - mean) ** 2 for v in numbers) / (count - 1)) ** 0.5 if count > 1 else 0.0
            table[experiment][column] = {"mean": mean, "std": spread, "min": min(numbers),
                                         "max": max(numbers), "n": count}
    return table


def aggregate_markdown(table: dict[str, dict[str, dict]]) -> str:
    """Experiments as columns, metrics as rows: `mean ± std` in percent."""
    experiments = list(table)
    columns = list(dict.fromkeys(c for rows in table.values() for c in rows))
    lines = ["| metric | " + " | ".join(experiments) + " |", "|---|" + "---:|" * len(experiments)]
    for column in columns:
        cells = []
        for experiment in experiments:
            stats = table[experiment].get(column)
            cells.append("—" if stats is None else
                         f"{100 * stats['mean']:.1f} ± {100 * stats['std']:.1f}")
        lines.append(f"| {column} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def snakemake(seed: int, cores: str) -> float:
    start = time.perf_counter()
    subprocess.run(
        [str(SNAKEMAKE), "--cores", cores, "--profile", "profiles/local", "--quiet", "all",
         "--config", f"seed={seed}", f"output_dir=results/seed{seed}"],
        cwd=REPO, check=True, stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def job_benchmarks(out: Path) -> dict[str, dict]:
    """Benchmark file (relative path, no suffix) -> its first row."""
    rows = {}
    for path in sorted((out / "benchmarks").rglob("*.tsv")):
        with path.open() as handle:
            rows[str(path.relative_to(out / "benchmarks").with_suffix(""))] = next(
                csv.DictReader(handle, delimiter="\t")
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--cores", default="all")
    parser.add_argument("--aggregate-only", action="store_true",
                        help="only read finished results/seed{N} directories")
    args = parser.parse_args()
    runs, summaries, rule_seconds = {}, [], defaultdict(list)
    for seed in args.seeds:
        out = REPO / "results" / f"seed{seed}"
        run = {}
        if not args.aggregate_only:
            run["wall_s"] = round(snakemake(seed, args.cores), 1)
            run["noop_rerun_s"] = round(snakemake(seed, args.cores), 1)
        jobs = job_benchmarks(out)
        run["peak_job_rss_mb"] = round(max(float(row["max_rss"]) for row in jobs.values()), 1)
        run["sum_of_job_seconds"] = round(sum(float(row["s"]) for row in jobs.values()), 1)
        for name, row in jobs.items():
            rule_seconds[name.split("/")[0]].append(float(row["s"]))
        runs[seed] = run
        summaries.append(json.loads((out / "summary.json").read_text()))
    table = aggregate_runs(summaries)
    (REPO / "results" / "seeds.md").write_text(
        f"Seeds {args.seeds}: mean ± sample standard deviation, in percent.\n\n"
        + aggregate_markdown(table)
    )
    print(json.dumps({
        "benchmark": "default_pipeline_seeds",
        "seeds": args.seeds,
        "runs": runs,
        "mean_job_seconds_per_rule": {
            rule: round(sum(values) / len(values), 1) for rule, values in sorted(rule_seconds.items())
        },
        "jobs_per_rule_per_run": {
            rule: len(values) // len(args.seeds) for rule, values in sorted(rule_seconds.items())
        },
        "results": table,
    }, indent=1))


if __name__ == "__main__":
    main()
