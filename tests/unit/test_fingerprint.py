import ast
import shutil
from pathlib import Path

import pytest

import i2crc_core
from i2crc_core.infra import fingerprint

SCRIPTS = Path(__file__).resolve().parents[2] / "workflow_scripts"
# A module that a stage imports and that imports others, but no script imports directly.
MOVED = "i2crc_core.method.refine"


@pytest.fixture
def package_copy(tmp_path, monkeypatch):
    """A private copy of the package, so that a test can edit modules."""
    copy = tmp_path / "i2crc_core"
    shutil.copytree(fingerprint.PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(fingerprint, "PACKAGE_DIR", copy)
    fingerprint._module_digest.cache_clear()
    yield copy
    fingerprint._module_digest.cache_clear()


def fingerprints() -> dict[str, str]:
    fingerprint._module_digest.cache_clear()
    return {
        script.stem: fingerprint.script_fingerprint(script)
        for script in sorted(SCRIPTS.glob("*.py"))
    }


def file_of(package_dir: Path, module: str) -> Path:
    return package_dir.joinpath(*module.split(".")[1:]).with_suffix(".py")


def move(package_dir: Path, old: str, new: str) -> None:
    """Moves module `old` to `new` (its folder made a package with a docstring), and rewrites
    every package import of the copy as absolute imports, one name per line, in the new
    places: what a refactoring does to the text, at its most thorough."""
    renamed = {old: new}
    for path in package_dir.rglob("*.py"):
        module = ".".join(["i2crc_core", *path.relative_to(package_dir).with_suffix("").parts])
        module = module.removesuffix(".__init__")
        source = path.read_text()
        lines = source.splitlines(keepends=True)
        for node, _, targets in sorted(
            fingerprint._package_imports(path, module),
            key=lambda found: (found[0].lineno, found[0].col_offset),
            reverse=True,
        ):
            assert isinstance(node, ast.ImportFrom)
            statements = []
            for name, imported, attribute in targets:
                imported = renamed.get(imported, imported)
                if attribute is None:
                    imported, attribute = imported.rsplit(".", 1)
                statements.append(f"from {imported} import {attribute} as {name}")
            indent = " " * node.col_offset
            first, last = node.lineno - 1, node.end_lineno - 1
            lines[first : last + 1] = [
                lines[first][: node.col_offset]
                + f"\n{indent}".join(statements)
                + lines[last][node.end_col_offset :]
            ]
        path.write_text("".join(lines))
    target = file_of(package_dir, new)
    target.parent.mkdir()
    (target.parent / "__init__.py").write_text('"""Moved here."""\n')
    file_of(package_dir, old).rename(target)


def test_closure_follows_relative_and_absolute_imports():
    closure = fingerprint.import_closure("i2crc_core.stages.pseudo_labels")
    assert {
        "i2crc_core.method.pseudo_labels",
        "i2crc_core.infra.camstore",
        "i2crc_core.infra.fileio",
        "i2crc_core.infra.errors",
        "i2crc_core.data.manifest",
    } <= closure
    assert "i2crc_core.nets.models" not in closure
    assert "i2crc_core.method.losses" not in closure


def test_editing_a_module_changes_exactly_the_stages_that_import_it(package_copy):
    stages = ["pseudo_labels", "train_classifier", "refine_labels", "prepare_dataset"]
    before = fingerprints()
    losses = file_of(package_copy, "i2crc_core.method.losses")
    losses.write_text(losses.read_text() + "\n# an edit\n")
    after = fingerprints()
    assert after["train_classifier"] != before["train_classifier"]
    for stage in ("pseudo_labels", "refine_labels", "prepare_dataset"):
        assert after[stage] == before[stage]
    assert set(stages) <= set(before)


def test_moving_a_module_and_rewriting_the_imports_changes_no_fingerprint(package_copy):
    """Fingerprints follow the code, not its path: a finished project reruns nothing for a
    move. The edit afterwards still counts."""
    before = fingerprints()
    move(package_copy, MOVED, "i2crc_core.moved.refinement")
    assert not file_of(package_copy, MOVED).exists()
    assert fingerprints() == before

    moved = file_of(package_copy, "i2crc_core.moved.refinement")
    moved.write_text(moved.read_text().replace("min_foreground", "min_object"))
    after = fingerprints()
    assert after["refine_labels"] != before["refine_labels"]
    for stage in ("pseudo_labels", "train_classifier", "prepare_dataset"):
        assert after[stage] == before[stage]


def test_a_name_taken_from_another_module_changes_the_fingerprint(package_copy):
    """Two modules define `IGNORE`: only the import line says which one a module uses, and
    the digest follows it to that module's code."""
    before = fingerprints()
    fileio = file_of(package_copy, "i2crc_core.infra.fileio")
    fileio.with_name("other.py").write_text(fileio.read_text() + "\nIGNORED_TOO = IGNORE\n")
    refine = file_of(package_copy, MOVED)
    refine.write_text(refine.read_text().replace(".infra.fileio import", ".infra.other import"))
    assert fingerprints()["refine_labels"] != before["refine_labels"]


def test_an_import_cycle_is_reported(package_copy):
    errors = file_of(package_copy, "i2crc_core.infra.errors")
    errors.write_text(errors.read_text() + "\nfrom .fileio import IGNORE\n")
    with pytest.raises(RuntimeError, match="import cycle"):
        fingerprints()


def test_package_inits_hold_a_docstring_only():
    """A package's __init__ runs on import but counts in no fingerprint: it must hold no code."""
    for init in Path(i2crc_core.__file__).parent.rglob("__init__.py"):
        body = ast.parse(init.read_text()).body
        assert len(body) == 1 and isinstance(body[0], ast.Expr), init
        assert isinstance(body[0].value, ast.Constant), init
