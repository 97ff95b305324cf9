"""Every command in a `bash` block of README.md and docs/*.md runs as written.

Snakemake commands run as dry runs in a copy of a finished smoke project (`--unlock` and
`--report` for real: they are quick), `make` targets as `make -n` (they exist and expand), the
predict CLI for real on the smoke project's models. What cannot run here is listed in NOT_RUN
with the reason, so that a new command is either run or named.
"""

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.workflow_project import REPO, Project

pytestmark = pytest.mark.pipeline

DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
VENV_BIN = Path(sys.executable).parent
NOT_RUN = {
    "sudo python3 tests/slurm/cluster.py": "stands up a SLURM cluster (tests/slurm does)",
    ".venv/bin/python -m pytest": "runs the test suite itself",
    ".venv/bin/pip install": "needs the internet (download.pytorch.org)",
    ".venv/bin/python bench/bench_crf.py": "reads a finished 5-seed benchmark run (hours)",
}
# Files the commands name as the user's own: an empty site overlay, photos to predict.
USER_FILES = ("my_site.yaml", "photos/", "extra.jpg")


def commands() -> list[tuple[str, str]]:
    """(where, command) for every command line of every bash block; continuation lines
    joined, comments dropped, optional `[--...]` arguments left out."""
    found = []
    for document in DOCUMENTS:
        text = document.read_text(encoding="utf-8")
        for block in re.findall(r"^```bash\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL):
            for line in block.replace("\\\n", " ").splitlines():
                line = re.sub(r"\[--[^\]]*\]", "", line)
                words = shlex.split(line, comments=True)
                if words:
                    found.append((document.name, shlex.join(words)))
    return found


COMMANDS = commands()


def test_the_documents_have_commands_and_every_one_is_run_or_named():
    assert len(COMMANDS) >= 15
    for where, command in COMMANDS:
        runnable = command.startswith(
            (".venv/bin/snakemake", "make ", ".venv/bin/python -m i2crc_core.predict")
        )
        assert runnable or command.startswith(tuple(NOT_RUN)), f"{where}: no way to run {command!r}"


@pytest.fixture(scope="module")
def project(finished_project, tmp_path_factory) -> Project:
    root = tmp_path_factory.mktemp("readme") / "project"
    shutil.copytree(finished_project.root, root, symlinks=True)
    (root / "my_site.yaml").write_text("{}\n")
    images = sorted((root / "results/seed0/dataset/synthetic/JPEGImages").glob("*.jpg"))
    (root / "photos").mkdir()
    for image in images[:2]:
        shutil.copy(image, root / "photos")
    shutil.copy(images[2], root / "extra.jpg")
    return Project(root, finished_project.config)


@pytest.mark.parametrize(
    ("where", "command"),
    [c for c in COMMANDS if not c[1].startswith(tuple(NOT_RUN))],
    ids=[f"{c[0]}: {c[1][:60]}" for c in COMMANDS if not c[1].startswith(tuple(NOT_RUN))],
)
def test_command_runs_as_written(project, where, command):
    words = shlex.split(command)
    if words[0] == "make":
        result = subprocess.run(
            ["make", "-n", *words[1:]], cwd=REPO, capture_output=True, text=True, timeout=60
        )
    else:
        words[0] = str(VENV_BIN / Path(words[0]).name)
        if words[0].endswith("snakemake") and not {"--unlock", "--report"} & set(words):
            words.insert(1, "--dry-run")  # first: after a "--" it would be a target
        result = subprocess.run(
            words,
            cwd=project.root,
            capture_output=True,
            text=True,
            timeout=600,
            env={
                "PATH": f"{VENV_BIN}:/usr/bin:/bin",
                "PYTHONPATH": str(project.root),
                "HOME": str(project.root),
            },
        )
    assert result.returncode == 0, (
        f"{where}: {command}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
