"""bench/gpu_check.py (`make gpu-check`, `python -m bench.gpu_check`) in its tiny mode: the
same code paths as on a GPU, small backbones and 64-px inputs, the test pipeline only dry-run;
a few seconds on a CPU."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MEASUREMENTS = {
    "classifier_train",
    "classifier_train_large_batch",
    "cam_compute",
    "cam_stage",
    "segmenter_train",
    "predict_compute",
    "predict_stage",
}
VOC_STAGES = {"train_classifier", "extract_cams", "train_segmentation", "predict"}


def test_tiny_gpu_check_prints_every_measurement_and_a_projection():
    done = subprocess.run(
        [sys.executable, "-m", "bench.gpu_check", "--tiny", "--pipeline", "dry-run"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
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

    for name in ("cam_stage", "predict_stage"):
        for precision in precisions:
            assert report["measurements"][name][precision]["marginal_images_per_s"] > 0, name
    loaders = report["loaders"]
    assert set(loaders) == {"classifier_train", "segmenter_train"}
    workers = (lambda threads: threads - 1) if environment["device"] != "cpu" else (lambda _: 0)
    assert all(
        loader["images_per_s"] > 0
        and loader["threads"] >= 1
        and loader["workers"] == workers(loader["threads"])
        for loader in loaders.values()
    )

    projection = report["projected_gpu_hours"]
    assert projection["precision"] == environment["auto_precision"]
    assert set(projection["training_bound_by"].values()) <= {"loader", "compute"}
    assert set(projection["stages"]) == VOC_STAGES
    assert all(hours > 0 for hours in projection["stages"].values())
    assert projection["total"] > 0
    assert report["pipeline"]["mode"] == "dry-run"
    assert report["pipeline"]["status"] == "ok", report["pipeline"].get("error_tail")


def test_peaks_are_matched_by_exact_model_and_unknown_ones_say_why():
    from bench import gpu_check

    expected = {
        "NVIDIA H100 80GB HBM3": 989,
        "NVIDIA H100 PCIe": 756,
        "NVIDIA H100 NVL": 835,
        "NVIDIA H200": 989,
        "NVIDIA H200 NVL": 835,
        "NVIDIA GH200 480GB": 989,
        "NVIDIA B200": 2250,
        "NVIDIA A100-SXM4-80GB": 312,
        "NVIDIA A100 80GB PCIe": 312,
        "NVIDIA L40S": 362,
        "NVIDIA L40": 181,
        "NVIDIA A40": 149.7,
        "NVIDIA A10": 125,
        "NVIDIA L4": 121,
        "Tesla T4": 65,
        "Tesla V100-SXM2-32GB": 125,
        "Tesla V100-PCIE-16GB": 112,
        "NVIDIA GeForce RTX 4090": 165.2,
    }
    for name, half in expected.items():
        peaks, reason = gpu_check.peak_tflops(name)
        assert reason is None and peaks["bf16/fp16"] == half, name
    for name, why in (
        ("NVIDIA A10G", "no datasheet peak for NVIDIA A10G"),
        ("NVIDIA A100-SXM4-40GB MIG 3g.20gb", "is a MIG slice"),
    ):
        peaks, reason = gpu_check.peak_tflops(name)
        assert peaks is None and why in reason, name


def test_outside_tiny_a_machine_without_a_usable_gpu_is_told_in_one_line():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is there: the check would run, for minutes")
    done = subprocess.run(
        [sys.executable, "-m", "bench.gpu_check", "--pipeline", "skip"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "i2crc error: bench/gpu_check.py (outside --tiny): 'cuda' requested but CUDA is unusable"
    )
