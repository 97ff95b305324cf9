import shutil
from pathlib import Path

import pytest

from i2crc_core import fingerprint

SCRIPTS = Path(__file__).resolve().parents[2] / "workflow_scripts"


@pytest.fixture
def package_copy(tmp_path, monkeypatch):
    """A private copy of the package, so that a test can edit modules."""
    copy = tmp_path / "i2crc_core"
    shutil.copytree(fingerprint.PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(fingerprint, "PACKAGE_DIR", copy)
    fingerprint.script_fingerprint.cache_clear()
    yield copy
    fingerprint.script_fingerprint.cache_clear()


def test_closure_follows_relative_and_absolute_imports():
    closure = fingerprint.import_closure("i2crc_core.stages.pseudo_labels")
    assert {
        "i2crc_core.pseudo_labels",
        "i2crc_core.camstore",
        "i2crc_core.fileio",
        "i2crc_core.errors",
        "i2crc_core.manifest",
    } <= closure
    assert "i2crc_core.models" not in closure
    assert "i2crc_core.losses" not in closure


def test_editing_a_module_changes_exactly_the_stages_that_import_it(package_copy):
    stages = ["pseudo_labels", "train_classifier", "refine_labels", "prepare_dataset"]
    before = {s: fingerprint.script_fingerprint(SCRIPTS / f"{s}.py") for s in stages}
    losses = package_copy / "losses.py"
    losses.write_text(losses.read_text() + "\n# an edit\n")
    fingerprint.script_fingerprint.cache_clear()
    after = {s: fingerprint.script_fingerprint(SCRIPTS / f"{s}.py") for s in stages}
    assert after["train_classifier"] != before["train_classifier"]
    for stage in ("pseudo_labels", "refine_labels", "prepare_dataset"):
        assert after[stage] == before[stage]
