"""CPU stages start fast: they do not import torch, nor OpenCV unless their work needs it; and
the library does not import the stages."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

import i2crc_core
from i2crc_core.fingerprint import import_closure

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


def test_library_modules_do_not_import_stages():
    """The stages use the library, never the other way round: a library module (the predict
    CLI included) that needs something of a stage takes it from the library module it belongs
    in. Imports anywhere in a module count (fingerprint's reading), directly or through others."""
    offenders = {
        path.stem: sorted(
            name
            for name in import_closure(f"i2crc_core.{path.stem}")
            if name.startswith("i2crc_core.stages")
        )
        for path in sorted(LIBRARY.glob("*.py"))
    }
    assert {name: found for name, found in offenders.items() if found} == {}
