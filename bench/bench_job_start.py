"""Start-up time of each pipeline job: a fresh interpreter importing the stage module that the
rule's script calls, as a Snakemake job does before its first line of work.

Prints one JSON object: per source tree and stage module, the median wall time of REPEATS fresh
processes (interpreter start included) and the heavy packages the import loaded. Give several
trees to compare them in the same run, e.g. the current one and a `git worktree` of an older
commit:

    python bench/bench_job_start.py . /tmp/before
"""

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPEATS = 3
HEAVY = ("torch", "cv2", "h5py", "matplotlib")
STAGES = (
    "synthetic_dataset",
    "prepare_dataset",
    "saliency_maps",
    "train_classifier",
    "extract_cams",
    "gather_cams",
    "pseudo_labels",
    "train_segmentation",
    "predict",
    "refine_labels",
    "evaluate",
    "summary",
    "figures",
)


def job_start(tree: Path, stage: str) -> dict:
    code = (
        f"import sys; import i2crc_core.runner, i2crc_core.stages.{stage}; "
        f"print(','.join(name for name in {HEAVY!r} if name in sys.modules))"
    )
    times, loaded = [], ""
    for _ in range(REPEATS):
        start = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-c", code],
            cwd=tree,
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONPATH": str(tree)},
        )
        times.append(time.perf_counter() - start)
        loaded = result.stdout.strip()
    return {
        "seconds": round(statistics.median(times), 3),
        "heavy_imports": loaded.split(",") if loaded else [],
    }


def main(trees: list[str]) -> None:
    report = {"repeats": REPEATS, "trees": {}}
    for stage in STAGES:  # interleaved, so that load on the machine affects every tree alike
        for tree in trees:
            report["trees"].setdefault(tree, {})[stage] = job_start(Path(tree).resolve(), stage)
    for stages in report["trees"].values():
        stages["total_seconds"] = round(sum(entry["seconds"] for entry in stages.values()), 2)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:] or ["."])
