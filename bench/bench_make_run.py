"""`make run`'s pipeline timed at an earlier commit and at the working tree, on this machine.

    python bench/bench_make_run.py [--old 7a531d7] [--cores 2] [--order old new]

Each side runs the default target (`snakemake --cores N --profile profiles/local`, what
`make run` runs after setting up) from scratch into a fresh temporary output folder, one after
the other, never at the same time; the old commit from a `git worktree` of this repository,
with this environment's packages. Prints one JSON object: each side's wall seconds, the sum of
its jobs' seconds per rule (from the `benchmark:` files), the ratio old / new, and the machine
(CPU model, `torch.backends.cpu.get_cpu_capability()`, cores). Set ATEN_CPU_CAPABILITY=avx2 to
time the AVX2 kernels on an AVX512 machine.
"""

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch

from i2crc_core.infra.provenance import cpu_model

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).parent / "snakemake"


def job_seconds(out: Path) -> dict[str, float]:
    """Seconds per rule, summed over the jobs' benchmark files."""
    totals: dict[str, float] = defaultdict(float)
    for path in out.rglob("benchmarks/**/*.tsv"):
        rule = path.relative_to(out).parts
        name = rule[rule.index("benchmarks") + 1].removesuffix(".tsv")
        with open(path, newline="") as handle:
            totals[name] += sum(float(row["s"]) for row in csv.DictReader(handle, delimiter="\t"))
    return {name: round(seconds, 1) for name, seconds in sorted(totals.items())}


def timed_run(tree: Path, cores: str) -> dict:
    out = Path(tempfile.mkdtemp(prefix="make-run-"))
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
            f"output_dir={out}",
        ],
        cwd=tree,
        check=True,
    )
    wall = time.perf_counter() - start
    return {
        "tree": str(tree),
        "output_dir": str(out),
        "wall_seconds": round(wall, 1),
        "job_seconds": job_seconds(out),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", default="7a531d7")
    parser.add_argument("--cores", default="2")
    parser.add_argument("--order", nargs=2, default=["old", "new"], choices=["old", "new"])
    args = parser.parse_args()
    worktree = Path(tempfile.mkdtemp(prefix="old-tree-")) / "tree"
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(worktree), args.old],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    try:
        trees = {"old": worktree, "new": REPO}
        runs = {side: timed_run(trees[side], args.cores) for side in args.order}
    finally:
        subprocess.run(
            ["git", "worktree", "remove", "--force", str(worktree)], cwd=REPO, check=True
        )
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    print(
        json.dumps(
            {
                "machine": {
                    "cpu": cpu_model(),
                    "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                    "cores": args.cores,
                },
                "old": {"commit": args.old, **runs["old"]},
                "new": {"commit": commit, **runs["new"]},
                "ratio_old_over_new": round(
                    runs["old"]["wall_seconds"] / runs["new"]["wall_seconds"], 2
                ),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
