"""What one DataLoader worker delivers to a GPU training stage, before and after the samples
left the loader as uint8 crops (datasets.py: the jitter and normalisation moved to the device),
in the same run. Prints one JSON object.

Inputs: IMAGES synthetic VOC-sized JPEGs (500x375, 375x500, 500x333; smooth colour fields with
photo-like grain, written by OpenCV at quality 90) with label and saliency PNGs, in a temporary
folder. Settings of config/voc12.yaml: the classifier at 256² with colour jitter 0.3, 0.3, 0.3,
0.1 and batches of 5; the segmenter with 321² crops of scales 0.5-1.5 and batches of 10.
Nothing is cached between epochs (DecodedCache off), as for VOC's 10,582 images, which exceed
its budget.

- images_per_s_per_worker: seeded samples (sampling.SeededSamples) collated into batches
  (default_collate), as a DataLoader worker makes them, in this process on one torch thread and
  one OpenCV thread, as a worker runs; `previous` is the datasets before the change, reproduced
  here (jitter on the CPU; the whole rescaled image normalised, then padded and cropped),
  `uint8` the datasets now, whose batches the device still has to finish. The median of REPEATS
  passes over the images, previous and now alternating, each timed in this process's CPU time
  (time.process_time): what a worker with a core to itself delivers, also on a shared machine.
- data_ms_per_step_with_7_workers: a batch's worth of that work spread over the 7 workers of the
  preset's 8 threads: what a training step on a GPU waits for unless its compute takes longer.
- finish_ms_per_batch_on_cpu: `dataset.finish` of one batch on this CPU on one thread, CPU time
  (on a GPU it is kernels; on the CPU it is training-process work).
- finish_dispatch_ms_per_batch: the same on 8x8-pixel crops of the batch, where the arithmetic
  vanishes: what dispatching the finish's ops costs the training process per batch (the
  jitter goes image by image, ~100 ops each); on a GPU, kernel launches come on top.
- identical: the finished batches equal the previous datasets' bit for bit.
- seed_ms_per_sample: seeding a sample's draws (sampling.SeededSamples), previously with
  torch.manual_seed (which `previous` above pays too), now the CPU generator's alone.
- decode_ms_per_image: the JPEG decode alone (fileio.read_image), for comparison with real photos.

    python bench/bench_loader.py
"""

import json
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import default_collate

from i2crc_core.data.datasets import (
    ClassificationDataset,
    DecodedCache,
    SegmentationDataset,
    _resize,
    normalize,
)
from i2crc_core.data.layout import VocLayout
from i2crc_core.data.saliency import load_saliency
from i2crc_core.infra.fileio import IGNORE, read_image, read_label, write_gray, write_label
from i2crc_core.nets.sampling import SeededSamples

IMAGES = 30
REPEATS = 5
SIZES = [(375, 500), (500, 375), (333, 500)]
WORKERS = 7
CLASSIFIER = {"input_size": 256, "color_jitter": (0.3, 0.3, 0.3, 0.1), "batch": 5}
SEGMENTER = {"crop_size": 321, "scale_range": (0.5, 1.5), "batch": 10}


class PreviousSeededSamples(SeededSamples):
    """Samples seeded as before, by torch.manual_seed."""

    def __getitem__(self, key):
        index, seed = key
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.dataset[index]


class PreviousClassification(ClassificationDataset):
    """The classifier's samples as the dataset made them before: jittered on the CPU and
    normalised in __getitem__."""

    def __getitem__(self, index):
        image_id = self.ids[index]
        size = (self.input_size, self.input_size)
        image = self.decoded(read_image, self.layout.image_path(image_id))
        maps = [torch.from_numpy(_resize(image, size, cv2.INTER_LINEAR)).permute(2, 0, 1)]
        saliency = self.decoded(
            load_saliency, self.saliency_dir / f"{image_id}.png", image.shape[:2]
        )
        maps.append(torch.from_numpy(_resize(saliency, size, cv2.INTER_LINEAR))[None])
        maps[0] = self.jitter(maps[0].contiguous())
        if torch.rand(()) < 0.5:
            maps = [m.flip(-1) for m in maps]
        label = torch.zeros(self.num_classes)
        label[[c - 1 for c in self.labels[image_id]]] = 1.0
        return {
            "id": image_id,
            "image": normalize(maps[0]),
            "label": label,
            "saliency": maps[1].clamp(0.0, 1.0).contiguous(),
        }


class PreviousSegmentation(SegmentationDataset):
    """The segmenter's samples as the dataset made them before: the whole rescaled image
    normalised, then padded, cropped and flipped."""

    def __getitem__(self, index):
        image_id = self.ids[index]
        image = self.decoded(read_image, self.layout.image_path(image_id))
        label = self.decoded(read_label, self.label_dir / f"{image_id}.png", self.num_classes)
        low, high = self.scale_range
        scale = low + (high - low) * float(torch.rand(()))
        size = (max(1, round(image.shape[0] * scale)), max(1, round(image.shape[1] * scale)))
        image = _resize(image, size, cv2.INTER_LINEAR)
        label = _resize(label, size, cv2.INTER_NEAREST)
        image_tensor = normalize(image)
        label_tensor = torch.from_numpy(label.astype(np.int64))
        crop = self.crop_size
        pad = (0, max(0, crop - label.shape[1]), 0, max(0, crop - label.shape[0]))
        image_tensor = torch.nn.functional.pad(image_tensor, pad, value=0.0)
        label_tensor = torch.nn.functional.pad(label_tensor, pad, value=IGNORE)
        height, width = label_tensor.shape
        top = int(torch.randint(height - crop + 1, ()))
        left = int(torch.randint(width - crop + 1, ()))
        image_tensor = image_tensor[:, top : top + crop, left : left + crop]
        label_tensor = label_tensor[top : top + crop, left : left + crop]
        if self.flip and torch.rand(()) < 0.5:
            image_tensor, label_tensor = image_tensor.flip(-1), label_tensor.flip(-1)
        return {
            "id": image_id,
            "image": image_tensor.contiguous(),
            "label": label_tensor.contiguous(),
        }


def write_images(root: Path) -> list[str]:
    rng = np.random.default_rng(0)
    ids = []
    for index in range(IMAGES):
        height, width = SIZES[index % len(SIZES)]
        coarse = rng.integers(0, 256, (height // 32 + 2, width // 32 + 2, 3), np.uint8)
        image = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
        grain = rng.normal(0.0, 12.0, image.shape)
        image = np.clip(image + grain, 0, 255).astype(np.uint8)
        image_id = f"2008_{index:06d}"
        (root / "JPEGImages").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(
            str(root / "JPEGImages" / f"{image_id}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 90]
        )
        label = np.zeros((height, width), np.uint8)
        label[height // 4 : 3 * height // 4, width // 4 : 3 * width // 4] = 1 + index % 20
        write_label(root / "labels" / f"{image_id}.png", label)
        write_gray(root / "saliency" / f"{image_id}.png", (label > 0) * np.uint8(255))
        ids.append(image_id)
    return ids


def batches(dataset, batch: int, epoch: int) -> list[dict]:
    """One pass over the images in seeded samples, collated as a worker does."""
    previous = isinstance(dataset, (PreviousClassification, PreviousSegmentation))
    samples = (PreviousSeededSamples if previous else SeededSamples)(dataset)
    keys = [(index, 1000 * epoch + index) for index in range(len(dataset))]
    return [
        default_collate([samples[key] for key in keys[start : start + batch]])
        for start in range(0, len(keys) - batch + 1, batch)
    ]


def pass_seconds(dataset, batch: int, epoch: int) -> float:
    start = time.process_time()
    batches(dataset, batch, epoch)
    return time.process_time() - start


def measure(previous, now, batch: int) -> dict:
    for dataset in (previous, now):
        dataset.decoded = DecodedCache(max_bytes=0)
    seconds = {"previous": [], "uint8": []}
    for repeat in range(REPEATS):
        order = ("previous", "uint8") if repeat % 2 == 0 else ("uint8", "previous")
        for which in order:
            dataset = previous if which == "previous" else now
            seconds[which].append(pass_seconds(dataset, batch, repeat))
    images = len(now) // batch * batch
    rates = {which: images / float(np.median(times)) for which, times in seconds.items()}
    cpu = torch.device("cpu")
    reference, uint8 = batches(previous, batch, 0)[0], batches(now, batch, 0)[0]
    start = time.process_time()
    for _ in range(REPEATS):
        finished = now.finish(uint8, cpu)
    finish_ms = (time.process_time() - start) / REPEATS * 1000
    identical = all(torch.equal(finished[key], reference[key]) for key in finished)
    tiny = {
        key: value[..., :8, :8].contiguous()  # images and maps, not label vectors
        if torch.is_tensor(value) and value.dim() >= 3
        else value
        for key, value in uint8.items()
    }
    start = time.process_time()
    for _ in range(REPEATS * 10):
        now.finish(tiny, cpu)
    dispatch_ms = (time.process_time() - start) / (REPEATS * 10) * 1000
    return {
        "batch": batch,
        "images_per_s_per_worker": {which: round(rate, 1) for which, rate in rates.items()},
        "speed_up": round(rates["uint8"] / rates["previous"], 2),
        f"data_ms_per_step_with_{WORKERS}_workers": {
            which: round(batch / (rate * WORKERS) * 1000, 2) for which, rate in rates.items()
        },
        "finish_ms_per_batch_on_cpu": round(finish_ms, 2),
        "finish_dispatch_ms_per_batch": round(dispatch_ms, 2),
        "identical": identical,
    }


def seed_ms(manual_seed, calls: int = 300) -> float:
    start = time.process_time()
    for seed in range(calls):
        manual_seed(seed)
    return round((time.process_time() - start) / calls * 1000, 3)


def main() -> None:
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    report = {
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpus": os.cpu_count(),
        "images": IMAGES,
        "repeats": REPEATS,
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ids = write_images(root)
        layout = VocLayout(root)
        start = time.process_time()
        for _ in range(2):
            for image_id in ids:
                read_image(layout.image_path(image_id))
        report["decode_ms_per_image"] = round(
            (time.process_time() - start) / (2 * IMAGES) * 1000, 2
        )
        report["seed_ms_per_sample"] = {
            "previous": seed_ms(torch.manual_seed),
            "now": seed_ms(torch.random.default_generator.manual_seed),
        }
        labels = {image_id: (1 + index % 20,) for index, image_id in enumerate(ids)}
        report["classifier"] = measure(
            *(
                kind(
                    layout,
                    ids,
                    labels,
                    20,
                    root / "saliency",
                    CLASSIFIER["input_size"],
                    train=True,
                    color_jitter=CLASSIFIER["color_jitter"],
                )
                for kind in (PreviousClassification, ClassificationDataset)
            ),
            CLASSIFIER["batch"],
        )
        report["segmenter"] = measure(
            *(
                kind(
                    layout,
                    ids,
                    root / "labels",
                    20,
                    crop_size=SEGMENTER["crop_size"],
                    scale_range=SEGMENTER["scale_range"],
                    flip=True,
                    train=True,
                )
                for kind in (PreviousSegmentation, SegmentationDataset)
            ),
            SEGMENTER["batch"],
        )
    print(json.dumps(report))


if __name__ == "__main__":
    main()
