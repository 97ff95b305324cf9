"""A disk that fills up mid-write: the stage ends with one clear error, leaves nothing that
looks finished, and a rerun with room completes.

A full disk is simulated by a file size limit (RLIMIT_FSIZE) in a subprocess that runs the
stage the way a Snakemake job does (runner.run_stage); with SIGXFSZ ignored, a write past the
limit fails with EFBIG as a write to a full disk fails with ENOSPC.
"""

import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from i2crc_core.data.manifest import Manifest
from i2crc_core.infra.fileio import read_label, write_gray, write_image
from i2crc_core.nets.checkpoints import save_model
from i2crc_core.nets.models import build_classifier

SIZE = 160
LIMIT = 8_000  # bytes: above any log line written before the failure, below every output

LIMITED_RUN = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
from i2crc_core.runner import run_stage
from i2crc_core.stages import {stage} as stage
run_stage({log!r}, stage.run, **{kwargs!r})
"""


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Two noisy 256x256 images (their labels compress badly), a manifest, saliency maps and a
    small classifier."""
    root = tmp_path_factory.mktemp("voc")
    rng = np.random.default_rng(0)
    ids = ["a", "b"]
    for image_id in ids:
        write_image(
            root / "JPEGImages" / f"{image_id}.jpg",
            rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8),
        )
        write_gray(
            root / "saliency" / f"{image_id}.png",
            rng.integers(0, 256, (SIZE, SIZE), dtype=np.uint8),
        )
    labels = {"a": [1, 2], "b": [2, 3]}
    Manifest(
        root=str(root),
        image_dir="JPEGImages",
        mask_dir="SegmentationClass",
        split_dir="ImageSets/Segmentation",
        num_classes=3,
        class_names=["x", "y", "z"],
        ids={"train": ids, "val": ids},
        image_labels={"train": labels, "val": labels},
    ).save(root / "manifest.json")
    torch.manual_seed(0)
    save_model(root / "classifier.pt", build_classifier("small", 3))
    return root


def run_stage(stage: str, limit: int | None, log, **kwargs) -> subprocess.CompletedProcess:
    code = LIMITED_RUN.format(limit=limit or -1, stage=stage, log=str(log), kwargs=kwargs)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


def assert_one_clear_error(result, path):
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"i2crc error: {path}: writing failed: File too large (disk full, quota or file size "
        "limit); free space and rerun"
    ]


def test_cam_store_on_a_full_disk(dataset, tmp_path):
    store = tmp_path / "cams" / "1-of-1.h5"
    kwargs = dict(
        manifest_path=str(dataset / "manifest.json"),
        model_path=str(dataset / "classifier.pt"),
        out_path=str(store),
        shard="1-of-1",
        input_size=None,
        scales=[1.0],
        flip=False,
        normalise="attention",
        device="cpu",
        precision="fp32",
        threads=1,
    )
    result = run_stage("extract_cams", LIMIT, tmp_path / "full.log", **kwargs)
    assert result.returncode == 1, result.stderr
    # The store checks for room before each image (HDF5 crashes where a write fails), and says so.
    assert re.fullmatch(
        f"i2crc error: {re.escape(str(store))}: the file size limit of 8 KiB leaves this \\d+ KiB "
        "file \\d+ KiB, less than the 4.1 MiB checked before writing: 100 KiB of data and 4.0 MiB "
        "kept for what HDF5 writes on closing, which crashes the process if it cannot; raise the "
        "limit and rerun\n",
        result.stderr,
    ), result.stderr
    assert list(store.parent.iterdir()) == [], "no store, no temporary file"
    # A limit that the data fits, but not the room kept for closing, is refused as well: the
    # message says what was checked (it said "File too large", which the store was not).
    result = run_stage("extract_cams", 3 << 20, tmp_path / "headroom.log", **kwargs)
    assert "the file size limit of 3.0 MiB leaves this " in result.stderr, result.stderr
    assert "less than the 4.1 MiB checked before writing: 100 KiB of data" in result.stderr
    assert run_stage("extract_cams", None, tmp_path / "rerun.log", **kwargs).returncode == 0
    assert store.stat().st_size > LIMIT


def test_label_pngs_on_a_full_disk(dataset, tmp_path):
    cams = tmp_path / "cams.h5"
    assert (
        run_stage(
            "extract_cams",
            None,
            tmp_path / "cams.log",
            manifest_path=str(dataset / "manifest.json"),
            model_path=str(dataset / "classifier.pt"),
            out_path=str(cams),
            shard="1-of-1",
            input_size=None,
            scales=[1.0],
            flip=False,
            normalise="attention",
            device="cpu",
            precision="fp32",
            threads=1,
        ).returncode
        == 0
    )
    labels = tmp_path / "labels"
    kwargs = dict(
        manifest_path=str(dataset / "manifest.json"),
        cams_path=str(cams),
        saliency_dir=str(dataset / "saliency"),
        out_dir=str(labels),
        score_floor=0.0,
        conflict_threshold=0.9,
        bg_saliency=0.1,
        bg_cam=0.5,
        min_foreground=0.0,
        stretch_cams=True,
    )
    assert_one_clear_error(
        run_stage("pseudo_labels", 600, tmp_path / "full.log", **kwargs), labels / "a.png"
    )
    assert list(labels.iterdir()) == [], "the label being written is not left half-written"
    assert run_stage("pseudo_labels", None, tmp_path / "rerun.log", **kwargs).returncode == 0
    assert read_label(labels / "b.png", 3).shape == (SIZE, SIZE)
