"""CPU stages start fast: they do not import torch, nor OpenCV unless their work needs it; and
the library does not import the stages."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

import i2crc_core
from i2crc_core.infra.fingerprint import import_closure

# stage module -> heavy packages it may import (because it uses them)
CPU_STAGES = {
    "prepare_dataset": set(),
    "saliency_maps": set(),  # OpenCV is imported when a map is computed, not before
    "synthetic_dataset": {"cv2"},  # draws the images with OpenCV
    "gather_cams": set(),
    "pseudo_labels": set(),
    "refine_labels": set(),
    "evaluate": set(),
    "summary": set(),
    "fetch_voc": set(),
}
HEAVY = ("torch", "torchvision", "cv2", "matplotlib")


@pytest.mark.parametrize("stage", sorted(CPU_STAGES))
def test_cpu_stage_imports_no_heavy_package_it_does_not_use(stage):
    code = (
        f"import json, sys; import i2crc_core.stages.{stage}; "
        f"print(json.dumps([name for name in {HEAVY!r} if name in sys.modules]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert set(json.loads(result.stdout)) <= CPU_STAGES[stage]


LIBRARY = Path(i2crc_core.__file__).parent
# The concern packages, lowest first: a module imports from its own package and the ones below,
# never from one above. The entry points at the top level (the stage runner every workflow
# script calls, the predict command) and the stages may import any of them.
CONCERNS = ("infra", "method", "data", "nets", "report")
ENTRY_POINTS = ("i2crc_core.predict", "i2crc_core.runner")


def module_name(path: Path) -> str:
    parts = path.relative_to(LIBRARY.parent).with_suffix("").parts
    return ".".join(parts).removesuffix(".__init__")


MODULES = sorted(module_name(path) for path in LIBRARY.rglob("*.py"))


def concern(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 and parts[1] in CONCERNS else None


def test_every_module_has_a_place():
    """Each module sits in a concern package or in stages/, or is an entry point."""
    packages = ("i2crc_core", "i2crc_core.stages", *(f"i2crc_core.{name}" for name in CONCERNS))
    placeless = [
        module
        for module in MODULES
        if module not in (*packages, *ENTRY_POINTS)
        and concern(module) is None
        and not module.startswith("i2crc_core.stages.")
    ]
    assert placeless == []


def test_no_concern_imports_one_above_it_or_an_entry_point():
    """Imports anywhere in a module count (fingerprint's reading), directly or through others."""
    offenders = {}
    for module in MODULES:
        if concern(module) is None:
            continue
        level = CONCERNS.index(concern(module))
        above = sorted(
            name
            for name in import_closure(module)
            if name in ENTRY_POINTS
            or name.startswith("i2crc_core.stages")
            or (concern(name) is not None and CONCERNS.index(concern(name)) > level)
        )
        if above:
            offenders[module] = above
    assert offenders == {}


def test_library_modules_do_not_import_stages():
    """The stages use the library, never the other way round: a library module (the predict
    CLI included) that needs something of a stage takes it from the library module it belongs
    in."""
    offenders = {
        module: sorted(
            name for name in import_closure(module) if name.startswith("i2crc_core.stages")
        )
        for module in MODULES
        if not module.startswith("i2crc_core.stages")
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_no_import_cycles():
    """Code fingerprints chain along the imports and need them acyclic; so does reading the
    library from the bottom up."""
    closures = {module: import_closure(module) for module in MODULES}
    cycles = sorted(
        (first, second)
        for first in MODULES
        for second in closures[first]
        if first < second and first in closures[second]
    )
    assert cycles == []
