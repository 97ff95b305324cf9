"""The default benchmark over several seeds, as one DAG: results (mean ± spread), wall time,
memory.

    python bench/bench_seeds.py [--seeds 0 1 2] [--cores all]

Runs the default pipeline with `seeds: [...]` into results/ (Snakemake skips what is already
finished), runs it again to time a no-op rerun, then prints one JSON object: the wall times,
the peak memory of any job and the sum of job seconds per seed, the mean job seconds per rule
from the `benchmark:` files, and the summary over seeds (results/summary.json, whose table is
results/summary.md).
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


def snakemake(seeds: list[int], cores: str) -> float:
    start = time.perf_counter()
    subprocess.run(
        [
            str(SNAKEMAKE),
            "--cores",
            cores,
            "--profile",
            "profiles/local",
            "--quiet",
            "all",
            "--config",
            f"seeds={json.dumps(seeds)}",
        ],
        cwd=REPO,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def job_benchmarks(run: Path) -> dict[str, dict]:
    """Benchmark file (relative path, no suffix) -> its first row."""
    rows = {}
    for path in sorted((run / "benchmarks").rglob("*.tsv")):
        with path.open() as handle:
            rows[str(path.relative_to(run / "benchmarks").with_suffix(""))] = next(
                csv.DictReader(handle, delimiter="\t")
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--cores", default="all")
    args = parser.parse_args()
    report = {
        "benchmark": "default_pipeline_seeds",
        "seeds": args.seeds,
        "wall_s": round(snakemake(args.seeds, args.cores), 1),
        "noop_rerun_s": round(snakemake(args.seeds, args.cores), 1),
        "per_seed": {},
    }
    rule_seconds = defaultdict(list)
    for seed in args.seeds:
        jobs = job_benchmarks(REPO / "results" / f"seed{seed}")
        report["per_seed"][seed] = {
            "peak_job_rss_mb": round(max(float(row["max_rss"]) for row in jobs.values()), 1),
            "sum_of_job_seconds": round(sum(float(row["s"]) for row in jobs.values()), 1),
        }
        for name, row in jobs.items():
            rule_seconds[name.split("/")[0]].append(float(row["s"]))
    report["mean_job_seconds_per_rule"] = {
        rule: round(sum(values) / len(values), 1) for rule, values in sorted(rule_seconds.items())
    }
    report["results"] = json.loads((REPO / "results" / "summary.json").read_text())["aggregate"]
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
