"""bench/gpu_check.py (`make gpu-check`) in its tiny mode: the same code paths as on a GPU,
small backbones and 64-px inputs, the test pipeline only dry-run; a few seconds on a CPU."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MEASUREMENTS = {
    "classifier_train", "classifier_train_large_batch", "cam_compute", "cam_stage",
    "segmenter_train", "predict_compute", "predict_stage",
}
VOC_STAGES = {"train_classifier", "extract_cams", "train_segmentation", "predict"}


def test_tiny_gpu_check_prints_every_measurement_and_a_projection():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "gpu_check.py"), "--tiny", "--pipeline", "dry-run"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)

    environment = report["environment"]
    precisions = list(dict.fromkeys([environment["auto_precision"], "fp32"]))
    assert report["tiny"] is True
    assert set(report["measurements"]) == MEASUREMENTS
    for name, measurement in report["measurements"].items():
        for precision in precisions:
            figures = measurement[precision]
            assert figures["images_per_s"] > 0, name
            assert figures["tflops"] > 0, name
            if "gflop_per_image" in figures:
                assert figures["gflop_per_image"] > 0, name
            if environment["device"] == "cpu":
                assert figures["peak_mem_mib"] is None and figures["mfu"] is None, name
        if name.endswith("_stage"):
            assert all(measurement[p]["gpu_busy_estimate"] > 0 for p in precisions), name

    projection = report["projected_gpu_hours"]
    assert projection["precision"] == environment["auto_precision"]
    assert set(projection["stages"]) == VOC_STAGES
    assert all(hours > 0 for hours in projection["stages"].values())
    assert projection["total"] > 0
    assert report["pipeline"]["mode"] == "dry-run"
    assert report["pipeline"]["status"] == "ok", report["pipeline"].get("error_tail")
