"""Inference over a split: images in size order through a DataLoader, outputs written by a
background thread, and multi-scale segmentation.

Why this shape (the GPU must not wait for the host):
- ids are ordered by image size, read from the JPEG headers, so that every batch holds one
  size: VOC has dozens of sizes in no order, and batching only consecutive equal sizes gave
  batches of one. Outputs are keyed by id, so the order does not show in them.
- a batch holds as many images of a size as fit a pixel budget: 16 VOC images on CUDA; on the
  CPU, whose caches want a small working set, one VOC image but a dozen 96-pixel ones
  (bench/bench_cam_extraction.py: batches of 16 VOC images made CPU extraction 1.4x slower).
- on CUDA, `threads` DataLoader workers decode and normalise the next batches while the model
  runs, into pinned memory, copied without blocking. On the CPU the model needs every core:
  images are decoded in the stage's process (workers made CPU extraction 1.3-2x slower).
- a writer thread compresses and writes outputs while the next batch is computed; a bounded
  queue keeps at most PENDING_OUTPUTS images' outputs in memory. Outputs that the thread frees
  at its own pace live outside the malloc heap (`off_heap`): in it, they made CAM extraction's
  memory grow by ~1-3 MiB per image (docs/benchmarks.md §"Memory of the stages").

Segmentation logits of several scales are fused by their maximum (ref code: scales 1, 0.75,
0.5), at the image's size or at the logits' (`predict_labels`); each scale is one forward over
the whole batch. An optional dense CRF (crf.py) then refines the fused logits' softmax at full
image size with the images' colours.
"""

import math
import mmap
import queue
import threading
from collections import defaultdict

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..data.datasets import IMAGENET_MEAN, IMAGENET_STD, ImageDataset
from ..data.loading import UserErrorLoader
from ..infra.errors import ConfigError, DatasetError
from .device import autocast
from .models import max_fused, rescale

BATCH_PIXELS = {"cuda": 16 * 375 * 500, "cpu": 150_000}
# How segmentation logits of several scales are fused (segmentation.inference_fusion)
FUSIONS = ("image", "logits")
PENDING_OUTPUTS = 32
# The networks' output stride: VGG-16's three 2x2 poolings leave no output pixel on a side
# shorter than this, and fail.
MIN_SCALED_SIDE = 8


def size_ordered_batches(sizes, max_pixels: int) -> list[list[int]]:
    """Indices grouped by equal (H, W) into batches of at most `max_pixels` pixels (at least
    one image), sizes in sorted order and indices in their original order within a size."""
    by_size = defaultdict(list)
    for index, size in enumerate(sizes):
        by_size[tuple(size)].append(index)
    batches = []
    for (height, width), indices in sorted(by_size.items()):
        length = max(1, max_pixels // (height * width))
        batches += [indices[start : start + length] for start in range(0, len(indices), length)]
    return batches


def _collate(samples: list[dict]) -> dict:
    return {
        "ids": [s["id"] for s in samples],
        "image": torch.stack([s["image"] for s in samples]),
        "sizes": [s["size"] for s in samples],
    }


def image_batches(
    layout, ids, device: torch.device, threads: int, input_size: int | None = None
) -> UserErrorLoader:
    """Batches {"ids", "image" (N, 3, H, W), "sizes": each image's own (H, W)} of the images of
    `ids`, one input size per batch: their own, or all warped to `input_size` squared."""
    on_gpu = device.type == "cuda"
    max_pixels = BATCH_PIXELS["cuda" if on_gpu else "cpu"]
    sizes = [layout.image_size(i) if input_size is None else (input_size,) * 2 for i in ids]
    batches = size_ordered_batches(sizes, max_pixels)
    return UserErrorLoader(
        ImageDataset(layout, ids, input_size),
        batch_sampler=batches,
        collate_fn=_collate,
        num_workers=threads if on_gpu else 0,
        pin_memory=on_gpu,
    )


def off_heap(array: np.ndarray) -> np.ndarray:
    """A copy of `array` in memory mapped for it alone, unmapped when the copy is freed. For
    outputs handed to a BackgroundWriter: in the malloc heap, each one freed by the writer
    thread at its own pace left a hole between the main thread's large, short-lived tensors,
    which glibc cannot give back while anything lies above it, and the heap grew with the number
    of images (docs/benchmarks.md §"Memory of the stages"). The copy costs ~1 ms for an image's
    CAMs (two classes at 375x500), against ~130 ms to compute them on two CPU cores."""
    copy = np.frombuffer(mmap.mmap(-1, max(array.nbytes, 1)), array.dtype, array.size)
    copy = copy.reshape(array.shape)  # mmap refuses an empty mapping, hence at least 1 byte
    copy[...] = array
    return copy


class BackgroundWriter:
    """Calls `write(item)` for every `put(item)` in a thread of its own, in order.

    A failure in the thread is raised in the caller, at its next `put` or on leaving the
    `with` block, as the original exception (an I2CRCError stays a one-line user error).
    """

    _DONE = object()

    def __init__(self, write):
        self._write = write
        self._queue = queue.Queue(maxsize=PENDING_OUTPUTS)
        self._error = None
        self._thread = threading.Thread(target=self._work, name="output-writer", daemon=True)

    def _work(self):
        while (item := self._queue.get()) is not self._DONE:
            if self._error is None:
                try:
                    self._write(item)
                except BaseException as error:  # handed to the caller, who raises it
                    self._error = error

    def __enter__(self) -> "BackgroundWriter":
        self._thread.start()
        return self

    def put(self, item) -> None:
        self._raise_error()
        self._queue.put(item)  # the worker drains the queue even after a failure: no deadlock

    def __exit__(self, exc_type, exc, tb) -> bool:
        self._queue.put(self._DONE)
        self._thread.join()
        if exc_type is None:
            self._raise_error()
        return False

    def _raise_error(self):
        if self._error is not None:
            raise self._error


def infer_images(
    layout,
    ids,
    infer,
    write,
    *,
    device: torch.device,
    precision: str,
    threads: int,
    desc: str,
    mininterval: float = 10,
) -> None:
    """`write(id, output)` for every image of `ids`, where `infer(images)` gives the outputs of
    a batch (N, 3, H, W) on `device`; writing overlaps the next batch (BackgroundWriter)."""
    with (
        BackgroundWriter(lambda entry: write(*entry)) as writer,
        tqdm(total=len(ids), desc=desc, mininterval=mininterval) as bar,
    ):
        for batch in image_batches(layout, ids, device, threads):
            with autocast(device, precision):
                outputs = infer(batch["image"].to(device, non_blocking=True))
            for entry in zip(batch["ids"], outputs):
                writer.put(entry)
            bar.update(len(batch["ids"]))


def check_scales(scales, layout, ids, name: str) -> None:
    """ConfigError naming `name` (a config key or a command-line option) unless every image of
    `ids` keeps at least MIN_SCALED_SIDE pixels per side at every scale of `scales` (as
    `rescale` makes it: the scaled size rounded down); a DatasetError naming the image when it
    has fewer at its own size, which no scale made."""
    scale = min(scales)
    for image_id in ids:
        size = layout.image_size(image_id)
        side = min(size)
        scaled = math.floor(side * scale)
        if scaled < MIN_SCALED_SIDE and side < MIN_SCALED_SIDE:
            raise DatasetError(
                f"{layout.image_path(image_id)}: image of {size[1]}x{size[0]} pixels is smaller "
                f"than the networks' output stride of {MIN_SCALED_SIDE} pixels on a side"
            )
        if scaled < MIN_SCALED_SIDE:
            raise ConfigError(
                f"{name}: scale {scale} makes the {side}-pixel side of "
                f"{layout.image_path(image_id)} {scaled} pixels, fewer than the networks' output "
                f"stride of {MIN_SCALED_SIDE}"
            )


def image_colours(images: torch.Tensor) -> np.ndarray:
    """RGB uint8 (N, H, W, 3) of ImageNet-normalised images (N, 3, H, W): the inverse of
    datasets.normalize, exact for every 8-bit value (its float32 error is far below half a
    level)."""
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    levels = ((images.float().cpu() * std + mean) * 255).round().clamp(0, 255)
    return levels.to(torch.uint8).permute(0, 2, 3, 1).numpy()


@torch.inference_mode()
def predict_labels(
    model, images: torch.Tensor, scales=(1.0,), crf=None, fusion: str = "image"
) -> np.ndarray:
    """Labels uint8 (N, H, W) of same-size images (N, 3, H, W): the argmax of the scales'
    fused logits, or with `crf` (a crf.DenseCRF) the argmax of the CRF on their softmax.
    `fusion` (FUSIONS): "image" upsamples each scale's logits to the image and takes their
    maximum; "logits" takes it at the logit resolution of the largest scale (the ref code's
    MSC at scales 1, 0.75, 0.5: at the scale-1 logits), then upsamples the maximum."""
    size = images.shape[-2:]
    if fusion == "logits":
        logits = model.scale_logits(images, scales)
        finest = logits[max(range(len(scales)), key=lambda index: scales[index])]
        fused = F.interpolate(
            max_fused(logits, finest.shape[-2:]), size=size, mode="bilinear", align_corners=False
        )
    else:
        # one scale's image-size logits at a time beside the running maximum
        fused = max_fused((model(rescale(images, scale)).float() for scale in scales), size)
    if crf is None:
        return fused.argmax(dim=1).to(torch.uint8).cpu().numpy()
    return crf(fused.softmax(dim=1).cpu().numpy(), image_colours(images))
