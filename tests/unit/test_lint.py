"""The Python lint of `make lint`, inside `make test` so that CI runs it: ruff's checks and
its formatting, as configured in pyproject.toml."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RUFF = Path(sys.executable).parent / "ruff"


@pytest.mark.parametrize(
    "command", [["check", "--output-format", "concise"], ["format", "--check"]]
)
def test_ruff_is_clean(command):
    done = subprocess.run([str(RUFF), *command, "."], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
