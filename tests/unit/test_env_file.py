"""The conda environment file pins what pyproject.toml pins (its dependencies and the `crf`
extra, which the VOC preset uses), and nothing relative to itself (Snakemake copies it
elsewhere before creating the environment)."""

import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def test_conda_env_pins_the_project_dependencies_and_no_local_path():
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    project = pyproject["dependencies"] + pyproject["optional-dependencies"]["crf"]
    env = yaml.safe_load((REPO / "envs" / "i2crc.yaml").read_text())
    pip = next(item["pip"] for item in env["dependencies"] if isinstance(item, dict))
    assert sorted(pip) == sorted(project)
    assert not [line for line in pip if line.startswith(("-e", ".", "/"))]
