"""The CUDA tier: what only a GPU can show. Every test is marked `cuda` and skipped where torch
finds no usable GPU; `make test` runs them where one is, and `make gpu-check` runs them first.

Tolerances: bf16 keeps 8 bits of mantissa, so CAMs (normalised to [0, 1]) are compared with
fp32 at 0.05 absolute, and predicted labels must agree on 99 % of the pixels (DeepLab's head
and upsampling run in fp32 in every precision, models.Segmenter.forward).
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

from i2crc_core.data.datasets import IMAGENET_STD, ClassificationDataset, SegmentationDataset
from i2crc_core.data.layout import VocLayout
from i2crc_core.infra.fileio import IGNORE, write_gray, write_image, write_label
from i2crc_core.method.losses import segmentation_loss, total_loss
from i2crc_core.nets.cams import compute_cams_batch
from i2crc_core.nets.device import autocast, cuda_problem, grad_scaler, prepare_model
from i2crc_core.nets.inference import predict_labels
from i2crc_core.nets.models import build_classifier, build_segmenter
from i2crc_core.nets.sampling import SeededSamples
from i2crc_core.nets.training import PrecisionHistory, optimisation_step, train_in_chunks

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(cuda_problem() is not None, reason=f"no usable CUDA: {cuda_problem()}"),
]

ROOT = Path(__file__).resolve().parents[2]
GPU = torch.device("cuda", 0)
CAM_TOLERANCE = 0.05
LABEL_AGREEMENT = 0.99


def _classifier_steps(precision: str, steps: int = 3) -> list[float]:
    torch.manual_seed(0)
    model = prepare_model(build_classifier("small", 3), GPU, training=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    scaler = grad_scaler(GPU, precision)
    images = torch.randn(4, 3, 64, 64, device=GPU)
    labels = torch.tensor([[1.0, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 1]], device=GPU)
    saliency = torch.rand(4, 1, 64, 64, device=GPU)
    losses = []
    for _ in range(steps):
        with autocast(GPU, precision):
            attention = model(images)
        assert attention.dtype == {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]
        loss, _ = total_loss(
            attention, labels, saliency, lambda_ob=0.01, lambda_bg=0.025, lambda_csd=0.1
        )
        optimisation_step(loss, optimizer, scaler)
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_a_training_step_in_mixed_precision_is_finite_and_learns(precision):
    losses = _classifier_steps(precision, steps=8)
    assert all(np.isfinite(losses)), losses
    assert losses[-1] < losses[0], losses


def test_a_segmenter_step_in_bf16_has_float32_logits():
    torch.manual_seed(0)
    model = prepare_model(build_segmenter("small", 3), GPU, training=True)
    images = torch.randn(2, 3, 64, 64, device=GPU)
    with autocast(GPU, "bf16"):
        logits = model(images)
    assert logits.dtype == torch.float32
    loss = segmentation_loss(logits, torch.randint(0, 4, (2, 64, 64), device=GPU), 255)
    loss.backward()
    assert torch.isfinite(loss)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_cams_and_predictions_in_mixed_precision_match_fp32(precision):
    torch.manual_seed(0)
    classifier = build_classifier("small", 3).to(GPU).eval()
    segmenter = build_segmenter("small", 3).to(GPU).eval()
    images = torch.randn(4, 3, 96, 128, device=GPU)
    class_ids = [[1], [2, 3], [1, 3], [2]]
    reference = compute_cams_batch(classifier, images, class_ids, scales=(1.0, 0.5), flip=True)
    labels = predict_labels(segmenter, images, (1.0, 0.75))
    with autocast(GPU, precision):
        mixed = compute_cams_batch(classifier, images, class_ids, scales=(1.0, 0.5), flip=True)
        mixed_labels = predict_labels(segmenter, images, (1.0, 0.75))
    for expected, got in zip(reference, mixed):
        np.testing.assert_allclose(got, expected, atol=CAM_TOLERANCE)
    assert (mixed_labels == labels).mean() >= LABEL_AGREEMENT


def test_the_gpu_slot_lock_gives_two_jobs_two_gpus_by_uuid(tmp_path):
    if torch.cuda.device_count() < 2:
        pytest.skip("needs two visible GPUs")
    code = (
        "from i2crc_core.nets.device import select_device; import time; "
        "print(select_device('cuda').index, flush=True); time.sleep(5)"
    )
    env = {"I2CRC_GPU_LOCK_DIR": str(tmp_path), "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    jobs = [
        subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    indices = {int(job.stdout.readline()) for job in jobs}
    for job in jobs:
        job.wait(timeout=60)
    assert len(indices) == 2, "two jobs, two GPUs"
    assert len(list(tmp_path.glob("gpu-GPU-*.lock"))) == 2, "lock files named by UUID"


def _train(checkpoint_dir, precision, stop_at=None):
    """Three chunks of a small classifier on the GPU, checkpointed; stopped before chunk
    `stop_at` as a killed job would be."""
    torch.manual_seed(0)
    model = prepare_model(build_classifier("small", 3), GPU, training=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    images = torch.randn(4, 3, 64, 64, device=GPU)
    labels = torch.tensor([[1.0, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 1]], device=GPU)
    saliency = torch.rand(4, 1, 64, 64, device=GPU)
    state = {
        "model": model,
        "optimizer": optimizer,
        "scaler": grad_scaler(GPU, precision),
        "precision": PrecisionHistory(precision),
    }

    def run_chunk(chunk):
        if chunk == stop_at:
            raise KeyboardInterrupt
        for _ in range(2):
            with autocast(GPU, precision):
                attention = model(images)
            loss, _ = total_loss(
                attention, labels, saliency, lambda_ob=0.01, lambda_bg=0.025, lambda_csd=0.1
            )
            optimisation_step(loss, optimizer, state["scaler"])

    train_in_chunks(
        num_chunks=3,
        run_chunk=run_chunk,
        state=state,
        checkpoint_dir=checkpoint_dir,
        run_key="cuda",
        seed=0,
    )
    return {name: value.detach().float().cpu() for name, value in model.state_dict().items()}


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_a_resume_on_the_gpu_continues_to_the_uninterrupted_result(tmp_path, precision):
    """Within a tolerance, not bit for bit: cuDNN may pick other kernels after a restart and
    the upsampling's backward uses atomics (docs/reproducibility.md §"On a GPU")."""
    uninterrupted = _train(tmp_path / "a", precision)
    with pytest.raises(KeyboardInterrupt):
        _train(tmp_path / "b", precision, stop_at=1)
    resumed = _train(tmp_path / "b", precision)
    for name, value in uninterrupted.items():
        torch.testing.assert_close(resumed[name], value, atol=1e-2, rtol=1e-2, msg=name)


def test_batches_finished_on_the_gpu_match_the_cpus(tmp_path):
    """The jitter's kernels on the GPU round (FMA, a reciprocal for a division by a scalar)
    otherwise than on the CPU, so a uint8 level may differ here and there; the crops, flips,
    labels and the zero padding are the same."""
    rng = np.random.default_rng(0)
    ids = [f"n{index}" for index in range(4)]
    for image_id, (height, width) in zip(ids, [(75, 100), (100, 75), (66, 100), (40, 30)]):
        write_image(
            tmp_path / "JPEGImages" / f"{image_id}.jpg",
            rng.integers(0, 256, (height, width, 3), np.uint8),
        )
        write_label(
            tmp_path / "labels" / f"{image_id}.png",
            rng.choice(np.array([0, 1, IGNORE], np.uint8), (height, width)),
        )
        write_gray(
            tmp_path / "saliency" / f"{image_id}.png",
            rng.integers(0, 256, (height, width), np.uint8),
        )
    layout = VocLayout(tmp_path)
    level = 1 / 255 / min(IMAGENET_STD)
    datasets = {
        "classifier": ClassificationDataset(
            layout, ids, {i: (1,) for i in ids}, 2, tmp_path / "saliency", 64, train=True
        ),
        "segmenter": SegmentationDataset(layout, ids, tmp_path / "labels", 2, crop_size=64),
    }
    for name, dataset in datasets.items():
        batch = default_collate([SeededSamples(dataset)[(index % 4, index)] for index in range(8)])
        on_cpu = dataset.finish(batch, torch.device("cpu"))
        on_gpu = dataset.finish(batch, GPU)
        assert on_gpu["image"].device == GPU and on_gpu["image"].dtype == torch.float32
        image = on_gpu["image"].cpu()
        torch.testing.assert_close(image, on_cpu["image"], rtol=0, atol=3 * level, msg=name)
        assert ((image - on_cpu["image"]).abs() < level / 2).float().mean() > 0.98, name
        if name == "segmenter":  # the padding, and only the padding, exactly zero
            assert torch.equal(image == 0, on_cpu["image"] == 0)
        for key in set(on_cpu) - {"image"}:
            assert torch.equal(on_gpu[key].cpu(), on_cpu[key]), (name, key)


def test_seeding_a_sample_leaves_the_training_process_gpu_generator_alone():
    """Without workers (one thread on CUDA) samples load in the training process, where a
    per-sample seed must not reseed the GPU's random stream."""
    torch.cuda.manual_seed(5)
    state = torch.cuda.get_rng_state()
    assert SeededSamples(["a", "b"])[(1, 123)] == "b"
    assert torch.equal(torch.cuda.get_rng_state(), state)
