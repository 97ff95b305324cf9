"""CPU stages start fast: they do not import torch, nor OpenCV unless their work needs it."""

import json
import subprocess
import sys

import pytest

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
    code = (f"import json, sys; import i2crc_core.stages.{stage}; "
            f"print(json.dumps([name for name in {HEAVY!r} if name in sys.modules]))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert set(json.loads(result.stdout)) <= CPU_STAGES[stage]
