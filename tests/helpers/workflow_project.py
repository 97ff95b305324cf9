"""A throwaway copy of the workflow project, run with the real Snakemake CLI.

Each project is a copy of the workflow and of `i2crc_core` in a temporary directory, put first
on PYTHONPATH, so that a test may edit library code (code-change invalidation) or configs
without touching the repository.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import yaml

from i2crc_core.infra.config import deep_update

REPO = Path(__file__).resolve().parents[2]
SNAKEMAKE = Path(sys.executable).parent / "snakemake"
PROJECT_PARTS = [
    "Snakefile",
    "rules",
    "workflow_scripts",
    "i2crc_core",
    "envs",
    "config.yaml",
    "config",
    "profiles",
    ".test",
]

# The smoke configuration, with results where the tests look for them.
TINY_CONFIG = {
    **yaml.safe_load((REPO / ".test" / "config.yaml").read_text()),
    "output_dir": "results",
}
# What seed 0 decides (everything of the synthetic benchmark but downloads) lives here.
RUN0 = "results/seed0"


class Project:
    def __init__(self, root: Path, config: dict):
        self.root = root
        self.write_config(config)

    def write_config(self, config: dict) -> None:
        self.config = config
        (self.root / "test_config.yaml").write_text(yaml.safe_dump(config))

    def snakemake(self, *args, check=True, timeout=900) -> subprocess.CompletedProcess:
        """Run Snakemake here; past `timeout` its whole process group is killed (its jobs
        too, which killing Snakemake alone would leave running) and TimeoutExpired raised."""
        env = {**os.environ, "PYTHONPATH": str(self.root), "OMP_NUM_THREADS": "1"}
        command = [str(SNAKEMAKE), *args, "--cores", "2", "--configfile", "test_config.yaml"]
        with subprocess.Popen(
            command,
            cwd=self.root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        ) as run:
            try:
                stdout, stderr = run.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(run.pid, signal.SIGKILL)
                run.communicate()
                raise
        result = subprocess.CompletedProcess(command, run.returncode, stdout, stderr)
        if check and result.returncode != 0:
            raise AssertionError(
                f"snakemake {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
            )
        return result

    def planned_jobs(self, *args) -> dict[str, int]:
        """Rule -> job count that a dry run would execute."""
        output = self.snakemake("--dry-run", *args).stdout
        if "Nothing to be done" in output:
            return {}
        table = output.split("Job stats:")[1].split("total")[0]
        return {
            match.group(1): int(match.group(2))
            for match in re.finditer(r"^(\w+)\s+(\d+)$", table, flags=re.MULTILINE)
        }


def output_bytes(out: Path) -> dict[str, bytes]:
    """Bytes of every label PNG, metrics file and the summary of a results folder, by path."""
    paths = [
        *sorted(out.glob("*/labels/*/*.png")),
        *sorted(out.glob("*/metrics/*.json")),
        out / "summary.json",
    ]
    return {str(path.relative_to(out)): path.read_bytes() for path in paths}


def make_project(root: Path, config_changes: dict | None = None) -> Project:
    root.mkdir(parents=True, exist_ok=True)
    for part in PROJECT_PARTS:
        source = REPO / part
        if source.is_dir():
            shutil.copytree(source, root / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, root / part)
    return Project(root, deep_update(TINY_CONFIG, config_changes or {}))


def rule_bodies() -> dict[str, str]:
    """Rule name -> the text of its definition in rules/*.smk (for `use rule X as Y with:`, Y's
    block: what it changes); a rule made in a loop (`rule:` with a `name:` expression) is keyed
    by that expression."""
    bodies = {
        match.group(1): match.group(2)
        for path in sorted((REPO / "rules").glob("*.smk"))
        for match in re.finditer(
            r"^(?:rule|use rule \w+ as) (\w+)(?: with)?:\n((?:[ \t]+.*\n|\n)*)",
            path.read_text(),
            flags=re.MULTILINE,
        )
    }
    bodies.update(
        {
            match.group(2).strip(): match.group(0)
            for path in sorted((REPO / "rules").glob("*.smk"))
            for match in re.finditer(
                r"^( +)rule:\n\1    name:\n\1        (.+)\n(?:\1    .*\n|\n)*?(?=\1\S|\S|\Z)",
                path.read_text(),
                flags=re.MULTILINE,
            )
        }
    )
    return bodies
