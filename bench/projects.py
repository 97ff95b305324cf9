"""Pipeline projects for the studies in bench/: a working folder with its own `results/` and
Snakemake metadata, run by this repository's Snakefile, and copied to start a variant from a
finished one.

A copy keeps every file's time stamp and Snakemake's records of what made it (parameters,
code fingerprints, inputs), so a run of the copy under another configuration reruns exactly
what that configuration changes, by Snakemake's own rules (docs/reproducibility.md
§"Rerun semantics"): a variant of the classifier's settings retrains the classifiers and what
follows them, and reuses the data, the saliency maps and the pretraining.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).parent / "snakemake"


def run(project: Path, targets, *, configfiles=(), config=None, cores: str = "all") -> None:
    """Snakemake on `project` (its working folder; output_dir `results` in it)."""
    project.mkdir(parents=True, exist_ok=True)
    command = [
        str(SNAKEMAKE),
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(project),
        "--profile",
        str(REPO / "profiles" / "local"),
        "--cores",
        cores,
        "--quiet",
        "rules",
        "--configfile",
        str(REPO / "config.yaml"),
        *[str(Path(path).resolve()) for path in configfiles],
    ]
    overrides = {"output_dir": "results", **(config or {})}
    command += ["--config", *[f"{key}={json.dumps(value)}" for key, value in overrides.items()]]
    subprocess.run([*command, "--", *targets], check=True)


def copy(source: Path, destination: Path) -> None:
    """A finished project's results and Snakemake records, time stamps kept, into a project
    that has none yet (one that has them is left as it is: a study resumes where it stopped)."""
    if (destination / "results").exists():
        return
    shutil.copytree(source / "results", destination / "results", symlinks=True)
    shutil.copytree(
        source / ".snakemake" / "metadata", destination / ".snakemake" / "metadata", symlinks=True
    )
