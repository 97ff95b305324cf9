"""The GPU check (`make gpu-check`, or `python -m bench.gpu_check` from the repository root,
which it needs on the path for `tests.helpers`): speed, memory and MFU of every GPU stage on
VOC-sized synthetic inputs, the GPU-hours they project for the VOC preset, and the tiny test
pipeline run end to end on the GPU. Needs no dataset; a few minutes on one H100. Prints one
JSON object.

Measured with the hyper-parameters of config/voc12.yaml (over config.yaml's), each in the
precision `auto` resolves to (bf16; fp16 below compute capability 8.0) and in fp32 on CUDA, in
fp32 only on the CPU:
- classifier_train(_large_batch): VGG-16 training steps at 256 px, the preset's batch (5) and
  32: SGD on the model's lr groups, total_loss with the paper's λ, optimisation_step;
- cam_compute: compute_cams_batch as the preset extracts (cams.input_size, scales, flip,
  normalise), 16 images of 500x375;
- segmenter_train: DeepLab-v2 ResNet-101 training steps, 321 px crops, batch 10, with the
  preset's input convention and multi-scale loss (segmentation.input_normalisation,
  msc_scales);
- predict_compute: predict_labels at scales 1, 0.75, 0.5 fused as the preset says
  (segmentation.inference_fusion), 16 images of 500x375;
- cam_stage / predict_stage: the real extract_cams / predict stage (run()) on synthetic JPEGs
  of mixed VOC sizes, after a warm-up run on a few images; the predict stage with the preset's
  dense CRF (segmentation.crf, CPU work in the preset's `threads` processes).

How to read it:
- images_per_s: compute measurements time `steps` steps after a warm-up, inputs already on the
  device, between torch.cuda.synchronize() calls. Stage measurements are the wall time of run(),
  which adds JPEG decoding, host copies, writing CAMs/PNGs and the per-run start-up (model load,
  DataLoader workers) that a shard job pays once for thousands of images.
- tflops: the FLOPs FlopCounterMode counts in one step (training: forward + backward) per second
  of step time. They are all convolutions: both backbones and heads are conv-only. A stage's
  FLOPs are its compute measurement's FLOPs per pixel times the pixels of its images.
- mfu: tflops / the GPU's dense tensor-core peak (PEAK_TFLOPS, matched by exact model; null,
  with the reason in environment.mfu_unknown_because, for an unknown GPU, a MIG slice or the
  CPU): bf16/fp16 peak, and for fp32
  the TF32 peak, since cuDNN runs fp32 convolutions in TF32 by default (left as the pipeline has
  it; the `tf32` entry records the settings). Convnets with BatchNorm, ReLU and interpolation
  between the convs reach a few tens of percent; a few percent means the GPU mostly waits.
- gpu_busy_estimate: stage tflops / compute tflops, the fraction of a stage's time the GPU
  computes; well below 1 means the stage is host-bound.
- loaders: images/s of the real training loaders (datasets, augmentation, the preset's threads:
  threads - 1 workers on CUDA; the batches finished on the device) over the synthetic JPEGs:
  what a training stage's GPU can be fed at most.
- marginal_images_per_s (stages): the slope between a run over half the images and one over
  all, i.e. an image's cost without the run's start-up, which a shard job pays once.
- projected_gpu_hours: the VOC preset's work (train_aug 10,582 images, val 1,449; per experiment
  one classifier training, CAMs of train_aug, two segmentation trainings, predictions on
  train_aug and twice on val) in the `auto` precision; training stages at the lower of their
  compute and loader rates (`training_bound_by` says which), inference stages at their
  marginal rates.
"""

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import torch
import yaml
from torch.utils.flop_counter import FlopCounterMode

if __spec__ is None:  # run as a file: the repository root is not on the path
    sys.exit(
        "i2crc error: bench/gpu_check.py: run it from the repository root as "
        "`python -m bench.gpu_check` (or `make gpu-check`)"
    )

REPO = Path(__file__).resolve().parents[1]

from i2crc_core.data.datasets import ClassificationDataset, SegmentationDataset  # noqa: E402
from i2crc_core.data.manifest import Manifest  # noqa: E402
from i2crc_core.infra.config import deep_update, validate_config  # noqa: E402
from i2crc_core.infra.errors import I2CRCError  # noqa: E402
from i2crc_core.infra.fileio import IGNORE, write_gray, write_image, write_label  # noqa: E402
from i2crc_core.method.crf import settings as crf_settings  # noqa: E402
from i2crc_core.method.losses import msc_segmentation_loss, segmentation_loss, total_loss  # noqa: E402
from i2crc_core.nets.cams import compute_cams_batch  # noqa: E402
from i2crc_core.nets.checkpoints import save_model  # noqa: E402
from i2crc_core.nets.device import (  # noqa: E402
    autocast,
    grad_scaler,
    prepare_model,
    resolve_precision,
    select_device,
)
from i2crc_core.nets.inference import predict_labels  # noqa: E402
from i2crc_core.nets.models import build_classifier, build_segmenter  # noqa: E402
from i2crc_core.nets.sampling import chunk_loader  # noqa: E402
from i2crc_core.nets.training import optimisation_step, optimizer_for  # noqa: E402
from i2crc_core.stages import extract_cams, predict  # noqa: E402
from tests.helpers.workflow_project import make_project  # noqa: E402

VOC_TRAIN_IMAGES, VOC_VAL_IMAGES = 10_582, 1_449
STAGE_BATCH = 16  # images per batch of the CAM and predict stages
LARGE_BATCH = 32
# (H, W) of VOC images and roughly how common each is; the stages batch only consecutive
# images of equal size, so the mix decides how full their batches are.
VOC_SIZES = {
    (375, 500): 0.45,
    (333, 500): 0.2,
    (500, 375): 0.15,
    (500, 333): 0.1,
    (366, 500): 0.05,
    (400, 500): 0.05,
}
# Dense tensor-core peaks in TFLOP/s by (model, variant), from NVIDIA's datasheets: (bf16/fp16,
# TF32); T4 and V100 have neither bf16 nor TF32: fp16 and plain fp32. Without sparsity. A model
# is matched exactly (peak_tflops), never by a prefix: an H200 NVL is not an H200 SXM.
PEAK_TFLOPS = {
    ("B200", None): (2250, 1100),
    ("GH200", None): (989, 494),
    ("H200", None): (989, 494),
    ("H200", "NVL"): (835, 418),
    ("H100", None): (989, 494),
    ("H100", "PCIe"): (756, 378),
    ("H100", "NVL"): (835, 418),
    ("A100", None): (312, 156),
    ("A100", "PCIe"): (312, 156),
    ("L40S", None): (362, 183),
    ("L40", None): (181, 90.5),
    ("A40", None): (149.7, 74.8),
    ("A10", None): (125, 62.5),
    ("L4", None): (121, 60),
    ("RTX 4090", None): (165.2, 82.6),
    ("T4", None): (65, 8.1),
    ("V100", None): (125, 15.7),
    ("V100", "PCIe"): (112, 14),
}
PIPELINE_TIMEOUT_S = 300  # ~1 min on 2 CPU cores; bounded so that the JSON still comes


def gpu_model(name: str) -> tuple[str, str | None]:
    """(model, variant) of a CUDA device name: "NVIDIA H200 NVL" -> ("H200", "NVL"),
    "Tesla V100-SXM2-32GB" -> ("V100", None), "NVIDIA GeForce RTX 4090" -> ("RTX 4090", None)."""
    words = re.sub(r"\b(NVIDIA|Tesla|GeForce|Quadro)\b", " ", name).replace("-", " ").split()
    model = " ".join(words[:2]) if words and words[0] == "RTX" else (words[0] if words else "")
    variant = next(
        (word for word in ("NVL", "PCIe") if word.lower() in map(str.lower, words)), None
    )
    return model, variant


def peak_tflops(name: str) -> tuple[dict | None, str | None]:
    """The GPU's dense peaks {"bf16/fp16", "fp32 (TF32)"}, or None and why MFU cannot be given."""
    if "MIG" in name.split():
        return None, (
            f"{name} is a MIG slice: its share of the whole GPU's peak is not known "
            "here, so MFU is not given"
        )
    model = gpu_model(name)
    if model not in PEAK_TFLOPS:
        return None, f"no datasheet peak for {name} (model {model[0]!r}) in PEAK_TFLOPS"
    half, fp32 = PEAK_TFLOPS[model]
    return {"bf16/fp16": half, "fp32 (TF32)": fp32}, None


def sig(value: float, digits: int = 4) -> float:
    return float(f"{value:.{digits}g}")


def workload(preset: dict, tiny: bool, steps: int | None) -> SimpleNamespace:
    """Sizes of every measurement: the VOC preset's, or tiny ones through the same code."""
    c, s = preset["classifier"], preset["segmentation"]
    if tiny:
        return SimpleNamespace(
            classifier="small",
            segmenter="small",
            aspp_rates=None,
            cls_size=64,
            cls_batches=(2, 4),
            seg_size=64,
            seg_batch=2,
            infer_hw=(48, 64),
            infer_batch=2,
            stage_sizes={(48, 64): 0.7, (64, 48): 0.3},
            warmup=1,
            steps=steps or 2,
        )
    return SimpleNamespace(
        classifier=c["backbone"],
        segmenter=s["backbone"],
        aspp_rates=s["aspp_rates"],
        cls_size=c["input_size"],
        cls_batches=(c["batch_size"], LARGE_BATCH),
        seg_size=s["crop_size"],
        seg_batch=s["batch_size"],
        infer_hw=(375, 500),
        infer_batch=STAGE_BATCH,
        stage_sizes=VOC_SIZES,
        warmup=3,
        steps=steps or 20,
    )


class Meter:
    """Times steps on one device and turns them into images/s, memory, TFLOP/s and MFU."""

    def __init__(self, device: torch.device, w: SimpleNamespace):
        self.device, self.w = device, w
        self.peaks, self.no_peak = None, "the CPU: MFU is for GPUs"
        if device.type == "cuda":
            self.peaks, self.no_peak = peak_tflops(torch.cuda.get_device_name(device))

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def reset_peak_memory(self) -> None:
        self.sync()
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)

    def peak_memory_mib(self) -> int | None:
        if self.device.type != "cuda":
            return None
        return round(torch.cuda.max_memory_allocated(self.device) / 2**20)

    def figures(self, images: int, seconds: float, flops: float, precision: str) -> dict:
        tflops = flops / seconds / 1e12
        peak = self.peaks and self.peaks["fp32 (TF32)" if precision == "fp32" else "bf16/fp16"]
        return {
            "images_per_s": sig(images / seconds),
            "peak_mem_mib": self.peak_memory_mib(),
            "tflops": sig(tflops),
            "mfu": sig(tflops / peak) if peak else None,
        }

    def measure(self, step, images_per_step: int, precision: str) -> dict:
        """Figures of `step()` (`images_per_step` images). Its FLOPs are counted in a first,
        untimed call (of a training step: forward and backward; the optimiser's element-wise
        updates are no FLOPs to the counter), which is also the first warm-up (cuDNN
        autotuning, allocator growth); with --steps 1 (large models on a CPU) the only one."""
        with FlopCounterMode(display=False) as counter:
            step()
        flops = counter.get_total_flops()
        for _ in range(min(self.w.warmup, self.w.steps - 1)):
            step()
        self.reset_peak_memory()
        start = time.perf_counter()
        for _ in range(self.w.steps):
            step()
        self.sync()
        seconds = (time.perf_counter() - start) / self.w.steps
        return {
            "gflop_per_image": sig(flops / images_per_step / 1e9),
            **self.figures(images_per_step, seconds, flops, precision),
        }


def random_classes(rng: np.random.Generator, num_classes: int) -> list[int]:
    """1-based classes of an image: half of them one class (the images the relation
    constraints use), the others two or three."""
    count = rng.choice([1, 1, 2, 3])
    return sorted(int(c) + 1 for c in rng.choice(num_classes, count, replace=False))


def training(meter, precisions, model, settings: dict, images, loss_of, forward=None) -> dict:
    """Training steps as the stages take them: forward (`forward(images)`, by default the
    model's) under autocast, `loss_of(output)` (float32), optimisation_step with the optimiser
    the preset's `settings` name on the model's lr groups."""
    result = {"batch": images.shape[0], "input_hw": list(images.shape[-2:])}
    for precision in precisions:
        optimizer = optimizer_for(model, settings)
        scaler = grad_scaler(meter.device, precision)

        def step():
            with autocast(meter.device, precision):
                output = (forward or model)(images)
            optimisation_step(loss_of(output), optimizer, scaler)

        result[precision] = meter.measure(step, images.shape[0], precision)
    return result


def classifier_training(meter, precisions, preset, lambdas, rng) -> dict:
    w, device, size = meter.w, meter.device, meter.w.cls_size
    num_classes = preset["dataset"]["num_classes"]
    # training=True: channels-last and cuDNN autotuning (benchmark), as the stage has it
    model = prepare_model(build_classifier(w.classifier, num_classes), device, training=True)
    results = {}
    for name, batch in zip(("classifier_train", "classifier_train_large_batch"), w.cls_batches):
        labels = torch.zeros(batch, num_classes, device=device)
        for row in range(batch):
            labels[row, [k - 1 for k in random_classes(rng, num_classes)]] = 1.0
        saliency = torch.rand(batch, 1, size, size, device=device)
        results[name] = training(
            meter,
            precisions,
            model.train(),
            preset["classifier"],
            torch.randn(batch, 3, size, size, device=device),
            lambda attention: total_loss(attention, labels, saliency, **lambdas)[0],
        )
    return results


def segmenter_training(meter, precisions, preset, rng) -> dict:
    w, device, s = meter.w, meter.device, preset["segmentation"]
    num_classes = preset["dataset"]["num_classes"]
    model = build_segmenter(
        w.segmenter,
        num_classes,
        aspp_rates=w.aspp_rates,
        input_normalisation=s["input_normalisation"],
    )
    model = prepare_model(model, device, training=True).train()
    msc = s["msc_scales"]
    shape = (w.seg_batch, w.seg_size, w.seg_size)
    target = torch.from_numpy(rng.integers(0, num_classes + 1, shape))
    target[torch.from_numpy(rng.random(shape) < 0.1)] = IGNORE  # object borders are unlabelled
    target = target.to(device)
    images = torch.randn(shape[0], 3, *shape[1:], device=device)
    return {
        "segmenter_train": training(
            meter,
            precisions,
            model,
            s,
            images,
            lambda logits: (msc_segmentation_loss if msc else segmentation_loss)(
                logits, target, IGNORE
            ),
            forward=(lambda crops: model.msc_logits(crops, msc)) if msc else None,
        )
    }


def loader_rates(preset: dict, layout: dict, device: torch.device, w) -> dict:
    """images/s of the real training loaders (datasets, augmentation, chunk_loader with the
    preset's threads on this device, each batch finished on the device by `dataset.finish` in
    this process, as the training loop does) over the layout's images, after a first batch that
    starts the workers: what a training stage's GPU can be fed at most."""
    manifest = Manifest.load(layout["timed"])
    voc = manifest.layout()
    ids, labels = manifest.ids["train"], manifest.labels("train")
    c, s = preset["classifier"], preset["segmentation"]
    loaders = {
        "classifier_train": (
            ClassificationDataset(
                voc,
                ids,
                labels,
                manifest.num_classes,
                voc.root / "saliency",
                w.cls_size,
                train=True,
                color_jitter=c["color_jitter"],
            ),
            w.cls_batches[0],
            "train_classifier",
        ),
        "segmenter_train": (
            SegmentationDataset(
                voc,
                ids,
                voc.mask_dir,
                manifest.num_classes,
                crop_size=w.seg_size,
                scale_range=tuple(s["scale_range"]),
                flip=s["flip"],
            ),
            w.seg_batch,
            "train_segmentation",
        ),
    }
    rates = {}
    for name, (dataset, batch, stage) in loaders.items():
        threads = min(preset["resources"][stage]["threads"], os.cpu_count())
        sampler, loader = chunk_loader(
            dataset, 0, device, threads, batch_size=batch, drop_last=True
        )
        sampler.set_span(0, len(dataset) * 2)
        batches = iter(loader)
        next(batches)  # workers start, first files are read
        start, count = time.perf_counter(), 0
        for sample in batches:
            count += dataset.finish(sample, device)["image"].shape[0]
        if device.type == "cuda":
            torch.cuda.synchronize()
        rates[name] = {
            "threads": threads,
            "workers": loader.loader.num_workers,
            "batch": batch,
            "images_per_s": sig(count / (time.perf_counter() - start)),
        }
    return rates


def write_layout(root: Path, w, count: int, num_classes: int, rng) -> dict:
    """A VOC layout of `count` smooth random JPEGs of mixed sizes and its manifest, plus a
    manifest of its first few images for the warm-up run: {"warmup": path, "timed": path}."""
    sizes = list(w.stage_sizes)
    picks = rng.choice(len(sizes), count, p=list(w.stage_sizes.values()))
    ids, labels = [], {}
    for index, pick in enumerate(picks):
        height, width = sizes[pick]
        coarse = rng.integers(0, 256, (height // 16 + 1, width // 16 + 1, 3), dtype=np.uint8)
        image_id = f"2008_{index:06d}"
        write_image(
            root / "JPEGImages" / f"{image_id}.jpg",
            cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC),
        )
        ids.append(image_id)
        labels[image_id] = random_classes(rng, num_classes)
        # what the training loaders read besides the image: a label map and a saliency map
        mask = np.full((height, width), labels[image_id][0], np.uint8)
        mask[: height // 3] = 0
        write_label(root / "SegmentationClass" / f"{image_id}.png", mask)
        write_gray(root / "saliency" / f"{image_id}.png", (mask > 0).astype(np.uint8) * 255)
    paths = {}
    for name, subset in (
        ("warmup", ids[: min(4, count)]),
        ("half", ids[: count // 2]),
        ("timed", ids),
    ):
        paths[name] = root / f"manifest_{name}.json"
        Manifest(
            root=str(root),
            image_dir="JPEGImages",
            mask_dir="SegmentationClass",
            split_dir="ImageSets/Segmentation",
            num_classes=num_classes,
            class_names=[f"class{c}" for c in range(1, num_classes + 1)],
            ids={"train": subset, "val": subset},
            image_labels={role: {i: labels[i] for i in subset} for role in ("train", "val")},
        ).save(paths[name])
    pixels = sum(sizes[pick][0] * sizes[pick][1] for pick in picks)
    return {**paths, "images": count, "half_images": count // 2, "pixels": pixels}


def inference(
    meter, precisions, name, model_step, run_stage, layout, settings, threads, warped_to=None
) -> dict:
    """`{name}_compute`: `model_step(precision)` on one batch of equal-size images (of the
    workload's size, or all warped to `warped_to` squared); `{name}_stage`: `run_stage(
    manifest_path, precision, tag)` on the layout's images, timed after a warm-up run on a few
    of them (first-call costs: imports, cuDNN handles, page cache)."""
    w = meter.w
    input_hw = w.infer_hw if warped_to is None else (warped_to, warped_to)
    compute = {"batch": w.infer_batch, "input_hw": list(input_hw), **settings}
    stage = {"images": layout["images"], "threads": threads}
    own_threads = torch.get_num_threads()  # a stage sets its own; the next measurements keep ours
    for precision in precisions:
        compute[precision] = meter.measure(lambda: model_step(precision), w.infer_batch, precision)
        run_stage(layout["warmup"], precision, "warmup")
        start = time.perf_counter()
        run_stage(layout["half"], precision, "half")
        meter.sync()
        half_seconds = time.perf_counter() - start
        meter.reset_peak_memory()
        start = time.perf_counter()
        run_stage(layout["timed"], precision, "timed")
        meter.sync()
        seconds = time.perf_counter() - start
        torch.set_num_threads(own_threads)
        # The slope between the two runs: each image's cost without the run's start-up, which
        # a shard job of thousands of images pays once.
        marginal = (layout["images"] - layout["half_images"]) / max(seconds - half_seconds, 1e-9)
        # FLOPs of a conv net grow with the pixels: the stage's images have mixed sizes, unless
        # they are all warped to one
        per_image = compute[precision]["gflop_per_image"] * 1e9
        flops = (
            per_image * layout["pixels"] / np.prod(w.infer_hw)
            if warped_to is None
            else per_image * layout["images"]
        )
        figures = meter.figures(layout["images"], seconds, flops, precision)
        busy = figures["tflops"] / compute[precision]["tflops"]
        stage[precision] = {
            "wall_s": sig(seconds),
            **figures,
            "gpu_busy_estimate": sig(busy),
            "marginal_images_per_s": sig(marginal),
        }
    return {f"{name}_compute": compute, f"{name}_stage": stage}


def saved_model(model, path: Path, device: torch.device):
    """`model` saved for a stage to load, and prepared for inference as the stage does it."""
    save_model(path, model)
    return prepare_model(model.eval(), device, training=False)


def cam_extraction(meter, precisions, preset, layout, workdir, rng) -> dict:
    w, device, cams = meter.w, meter.device, preset["cams"]
    num_classes = preset["dataset"]["num_classes"]
    model_path = workdir / "classifier.pt"
    model = saved_model(build_classifier(w.classifier, num_classes), model_path, device)
    warped_to = cams["input_size"]
    input_hw = w.infer_hw if warped_to is None else (warped_to, warped_to)
    images = torch.randn(w.infer_batch, 3, *input_hw, device=device)
    class_ids = [random_classes(rng, num_classes) for _ in range(w.infer_batch)]
    threads = min(preset["resources"]["extract_cams"]["threads"], os.cpu_count())
    options = {key: cams[key] for key in ("scales", "flip", "normalise")}

    def model_step(precision):
        with autocast(device, precision):
            compute_cams_batch(
                model, images, class_ids, sizes=[w.infer_hw] * len(images), **options
            )

    def run_stage(manifest_path, precision, tag):
        extract_cams.run(
            manifest_path=manifest_path,
            model_path=model_path,
            out_path=workdir / f"cams_{precision}_{tag}.h5",
            shard="1-of-1",
            input_size=warped_to,
            **options,
            device=device.type,
            precision=precision,
            threads=threads,
        )

    return inference(
        meter,
        precisions,
        "cam",
        model_step,
        run_stage,
        layout,
        {**options, "input_size": warped_to},
        threads,
        warped_to,
    )


def prediction(meter, precisions, preset, layout, workdir) -> dict:
    w, device, s = meter.w, meter.device, preset["segmentation"]
    scales, fusion = s["inference_scales"], s["inference_fusion"]
    model_path = workdir / "segmenter.pt"
    model = build_segmenter(
        w.segmenter,
        preset["dataset"]["num_classes"],
        aspp_rates=w.aspp_rates,
        input_normalisation=s["input_normalisation"],
    )
    model = saved_model(model, model_path, device)
    images = torch.randn(w.infer_batch, 3, *w.infer_hw, device=device)
    threads = min(preset["resources"]["predict"]["threads"], os.cpu_count())
    crf = crf_settings(s["crf"])

    def model_step(precision):
        with autocast(device, precision):
            predict_labels(model, images, scales, fusion=fusion)

    def run_stage(manifest_path, precision, tag):
        predict.run(
            manifest_path=manifest_path,
            model_path=model_path,
            split="val",
            out_dir=workdir / f"pred_{precision}_{tag}",
            scales=scales,
            fusion=fusion,
            crf=crf,
            device=device.type,
            precision=precision,
            threads=threads,
        )

    settings = {"scales": scales, "fusion": fusion}
    return inference(meter, precisions, "predict", model_step, run_stage, layout, settings, threads)


def projection(
    preset: dict, experiments: int, measurements: dict, loaders: dict, precision: str
) -> dict:
    """GPU-hours of each GPU stage of the VOC preset: training at the lower of its compute
    rate and its loader's rate, inference at the stages' marginal rate (without start-up)."""
    c, s = preset["classifier"], preset["segmentation"]
    rates = {
        name: min(measurements[name][precision]["images_per_s"], loaders[name]["images_per_s"])
        for name in loaders
    }
    rates.update(
        {
            name: measurements[name][precision]["marginal_images_per_s"]
            for name in ("cam_stage", "predict_stage")
        }
    )
    work = {  # stage: (images per experiment, the rate it runs at)
        "train_classifier": (c["epochs"] * VOC_TRAIN_IMAGES, "classifier_train"),
        "extract_cams": (VOC_TRAIN_IMAGES, "cam_stage"),
        "train_segmentation": (
            2 * s["iterations"] * s["batch_size"] * s["accumulate"],
            "segmenter_train",
        ),
        "predict": (VOC_TRAIN_IMAGES + 2 * VOC_VAL_IMAGES, "predict_stage"),
    }
    hours = {
        stage: sig(experiments * images / rates[name] / 3600)
        for stage, (images, name) in work.items()
    }
    bound = {
        name: "loader"
        if loaders[name]["images_per_s"] < measurements[name][precision]["images_per_s"]
        else "compute"
        for name in loaders
    }
    return {
        "precision": precision,
        "experiments": experiments,
        "stages": hours,
        "training_bound_by": bound,
        "total": sig(sum(hours.values())),
    }


def pipeline(mode: str, device: torch.device, workdir: Path) -> dict:
    """The tiny test pipeline (tests/workflow) run, or dry-run, with `device` set to ours."""
    if mode == "skip":
        return {"mode": mode}
    result = {"mode": mode, "device": device.type}
    if device.type != "cuda":
        result["note"] = "no usable CUDA GPU: the pipeline uses device cpu"
    else:
        # This process holds the GPU's lock (gpus.claim_gpu), for which the jobs would wait
        # forever; told their GPU by CUDA_VISIBLE_DEVICES, they use it without claiming it.
        os.environ.setdefault("CUDA_VISIBLE_DEVICES", str(device.index))
        torch.cuda.empty_cache()
    project = make_project(workdir / "pipeline", {"device": device.type})
    start = time.perf_counter()
    try:
        run = project.snakemake(
            *(["--dry-run"] if mode == "dry-run" else []), check=False, timeout=PIPELINE_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:  # still print the measurements
        return {**result, "wall_s": sig(time.perf_counter() - start), "status": "timeout"}
    result["wall_s"] = sig(time.perf_counter() - start)
    result["status"] = "ok" if run.returncode == 0 else "failed"
    if run.returncode != 0:
        result["error_tail"] = (run.stdout + run.stderr)[-3000:]
    return result


def command_output(*command) -> str | None:
    if shutil.which(command[0]) is None:
        return None
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60)
    return done.stdout.strip() if done.returncode == 0 else None


def environment(device: torch.device, auto_precision: str, meter: Meter) -> dict:
    """What the figures were measured on, so that they can be cited."""
    cuda = device.type == "cuda"
    driver = command_output("nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader")
    return {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if cuda else "cpu",
        "compute_capability": "{}.{}".format(*torch.cuda.get_device_capability(device))
        if cuda
        else None,
        "driver": driver.splitlines()[0] if driver else None,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "cpu_count": os.cpu_count(),
        "auto_precision": auto_precision,
        "peak_tflops": meter.peaks,
        "mfu_unknown_because": meter.no_peak,
        "tf32": {
            "cudnn_conv": torch.backends.cudnn.allow_tf32,
            "matmul": torch.backends.cuda.matmul.allow_tf32,
        },
        "git_commit": command_output("git", "rev-parse", "--short", "HEAD"),
        "git_dirty": bool(command_output("git", "status", "--porcelain", "--untracked-files=no")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--tiny",
        action="store_true",
        help="small backbones and 64-px inputs: the same code paths in seconds",
    )
    parser.add_argument(
        "--pipeline",
        choices=("run", "dry-run", "skip"),
        default="run",
        help="the tiny test pipeline: run it, dry-run it, or leave it out",
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="timed steps per measurement (default 20, --tiny 2); the stage runs "
        "take steps x batch images",
    )
    args = parser.parse_args()

    # the preset as a run gets it: over config.yaml, every key filled in and checked
    preset = validate_config(
        deep_update(
            yaml.safe_load((REPO / "config.yaml").read_text()),
            yaml.safe_load((REPO / "config" / "voc12.yaml").read_text()),
        )
    )
    lambdas = preset["experiments"]["i2crc"]  # the paper's λ (Eq. 8)
    experiments = len(preset["run_experiments"])
    w = workload(preset, args.tiny, args.steps)
    # The VOC sizes on a CPU would take hours and project GPU-hours from CPU rates: outside
    # --tiny a usable GPU is required, and the reason it is not usable is one line.
    if args.tiny and not torch.cuda.is_available():
        device = torch.device("cpu")
    else:
        try:
            device = select_device("cuda", "bench/gpu_check.py (outside --tiny)")
        except I2CRCError as error:
            sys.exit(f"i2crc error: {error}")
    auto_precision = resolve_precision("auto", device)
    # `auto` is fp32 on the CPU: bf16 there is slow and not what the pipeline does
    precisions = list(dict.fromkeys([auto_precision, "fp32"]))
    meter = Meter(device, w)
    rng = np.random.default_rng(0)
    torch.manual_seed(0)

    start = time.perf_counter()
    # Stages may print; stdout stays for the JSON alone.
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(sys.stderr):
        workdir = Path(tmp)
        layout = write_layout(
            workdir / "voc", w, w.steps * w.infer_batch, preset["dataset"]["num_classes"], rng
        )
        measurements = {
            **classifier_training(meter, precisions, preset, lambdas, rng),
            **cam_extraction(meter, precisions, preset, layout, workdir, rng),
            **segmenter_training(meter, precisions, preset, rng),
            **prediction(meter, precisions, preset, layout, workdir),
        }
        loaders = loader_rates(preset, layout, device, w)
        measure_seconds = time.perf_counter() - start
        results = {
            "benchmark": "gpu_check",
            "tiny": args.tiny,
            "timed_steps": w.steps,
            "environment": environment(device, auto_precision, meter),
            "measurements": measurements,
            "loaders": loaders,
            "projected_gpu_hours": projection(
                preset, experiments, measurements, loaders, auto_precision
            ),
            "measure_wall_s": sig(measure_seconds),
            "pipeline": pipeline(args.pipeline, device, workdir),
            "wall_s": sig(time.perf_counter() - start),
        }
    print(json.dumps(results))


if __name__ == "__main__":
    main()
