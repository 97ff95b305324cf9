"""CAM extraction on CPU, before and after the inference loader, in one run.

    python bench/bench_cam_extraction.py [--images 200] [--threads 2]

200 VOC-sized JPEGs of mixed sizes (375x500, 500x375, 333x500, 500x333, 366x500, 400x500, in
shuffled order as in VOC's id lists), the `small` classifier (20 classes), the paper's CAM
settings (scales 1, 0.75, 0.5 with flip). "before" is the earlier loop, kept here: decoding in
the main process, batches (up to 16) of *consecutive* equal-size images only, HDF5 writes
inside the loop. "after" is the stage (`extract_cams.run`) on the CPU: size-ordered batches
within the CPU's pixel budget (one image of these sizes), writes in a writer thread (on CUDA it
batches 16 VOC images and decodes in `threads` worker processes instead). Prints one JSON object
with images/s of
both, the batch counts, and the largest difference between the two stores (float16 storage).
"""

import argparse
import itertools
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from i2crc_core.data.datasets import ImageDataset
from i2crc_core.data.manifest import Manifest
from i2crc_core.infra.camstore import CamStore, CamStoreWriter
from i2crc_core.infra.fileio import write_image
from i2crc_core.nets.cams import compute_cams_batch
from i2crc_core.nets.checkpoints import load_model, save_model
from i2crc_core.nets.inference import BATCH_PIXELS, size_ordered_batches
from i2crc_core.nets.models import build_classifier
from i2crc_core.stages import extract_cams

SIZES = [(375, 500), (500, 375), (333, 500), (500, 333), (366, 500), (400, 500)]
WEIGHTS = [0.45, 0.15, 0.2, 0.1, 0.05, 0.05]
SCALES, FLIP, NUM_CLASSES = [1.0, 0.75, 0.5], True, 20
OLD_BATCH_SIZE = 16


def make_layout(root: Path, count: int) -> tuple[Path, list[tuple[int, int]]]:
    rng = np.random.default_rng(0)
    picks = rng.choice(len(SIZES), count, p=WEIGHTS)
    ids = [f"2008_{index:06d}" for index in range(count)]
    for image_id, pick in zip(ids, picks):
        height, width = SIZES[pick]
        coarse = rng.integers(0, 256, (height // 16 + 1, width // 16 + 1, 3), dtype=np.uint8)
        write_image(
            root / "JPEGImages" / f"{image_id}.jpg",
            cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC),
        )
    labels = {
        i: sorted(int(c) + 1 for c in rng.choice(NUM_CLASSES, rng.integers(1, 4), replace=False))
        for i in ids
    }
    manifest = root / "manifest.json"
    Manifest(
        root=str(root),
        image_dir="JPEGImages",
        mask_dir="SegmentationClass",
        split_dir="ImageSets/Segmentation",
        num_classes=NUM_CLASSES,
        class_names=[f"c{c}" for c in range(NUM_CLASSES)],
        ids={"train": ids, "val": ids},
        image_labels={"train": labels, "val": labels},
    ).save(manifest)
    return manifest, [SIZES[p] for p in picks]


def before(manifest_path, model_path, out_path) -> int:
    """The loop as it was: serial decoding, consecutive equal sizes, writes in the loop."""
    manifest = Manifest.load(manifest_path)
    ids, labels = manifest.ids["train"], manifest.labels("train")
    model = load_model(model_path, torch.device("cpu"), expected_kind="classifier")
    dataset = ImageDataset(manifest.layout(), ids)
    samples = (dataset[index] for index in range(len(dataset)))
    batches = 0
    with CamStoreWriter(out_path) as writer:
        for _, group in itertools.groupby(samples, key=lambda sample: tuple(sample["size"])):
            group = list(group)
            for start in range(0, len(group), OLD_BATCH_SIZE):
                batch = group[start : start + OLD_BATCH_SIZE]
                images = torch.stack([sample["image"] for sample in batch])
                class_ids = [labels[sample["id"]] for sample in batch]
                cams = compute_cams_batch(model, images, class_ids, scales=SCALES, flip=FLIP)
                for sample, image_cams, image_classes in zip(batch, cams, class_ids):
                    writer.write(sample["id"], image_cams, image_classes)
                batches += 1
    return batches


def after(manifest_path, model_path, out_path, threads: int) -> None:
    extract_cams.run(
        manifest_path=manifest_path,
        model_path=model_path,
        out_path=out_path,
        shard="1-of-1",
        input_size=None,
        scales=SCALES,
        flip=FLIP,
        normalise="image",
        device="cpu",
        precision="fp32",
        threads=threads,
    )


def timed(function, *args) -> tuple[float, object]:
    start = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - start, result


def max_difference(a: Path, b: Path) -> float:
    with CamStore(a) as first, CamStore(b) as second:
        assert first.ids == second.ids
        return max(float(np.abs(first[i][0] - second[i][0]).max()) for i in first.ids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        manifest, sizes = make_layout(root, args.images)
        torch.manual_seed(0)
        model_path = root / "classifier.pt"
        save_model(model_path, build_classifier("small", NUM_CLASSES))
        torch.set_num_threads(args.threads)
        old_seconds, old_batches = timed(before, manifest, model_path, root / "before.h5")
        new_seconds, _ = timed(after, manifest, model_path, root / "after.h5", args.threads)
        one_seconds, _ = timed(after, manifest, model_path, root / "after1.h5", 1)
        result = {
            "benchmark": "cam_extraction",
            "images": args.images,
            "sizes": len(set(sizes)),
            "scales": SCALES,
            "flip": FLIP,
            "backbone": "small",
            "cpu_threads": args.threads,
            "cpu_count": os.cpu_count(),
            "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "before": {
                "images_per_s": round(args.images / old_seconds, 2),
                "batches": old_batches,
                "seconds": round(old_seconds, 2),
            },
            "after": {
                "images_per_s": round(args.images / new_seconds, 2),
                "batches": len(size_ordered_batches(sizes, BATCH_PIXELS["cpu"])),
                "seconds": round(new_seconds, 2),
            },
            "after_1_thread": {"images_per_s": round(args.images / one_seconds, 2)},
            "speedup": round(old_seconds / new_seconds, 2),
            "max_abs_difference": max_difference(root / "before.h5", root / "after.h5"),
        }
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
