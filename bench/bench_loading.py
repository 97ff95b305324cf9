"""Training-sample loading on the built-in benchmark, with and without the decoded-file cache
(datasets.DecodedCache), in the same run: samples/s of the segmentation and classification
datasets over EPOCHS epochs of the default benchmark's training set (generated at seed 0 into a
temporary folder; the pseudo labels stand in by the masks, the saliency maps by the masks too:
both are PNGs of the same size). One process, one thread, the order alternated per epoch.

    python bench/bench_loading.py
"""

import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from i2crc_core.data.datasets import ClassificationDataset, DecodedCache, SegmentationDataset
from i2crc_core.data.layout import VocLayout, image_labels_from_masks, read_split
from i2crc_core.data.synthetic import generate

REPO = Path(__file__).resolve().parents[1]
EPOCHS = 3


def datasets(root: Path, config: dict) -> dict:
    layout = VocLayout(root)
    ids = read_split(layout.split_path("train"))
    num_classes = config["dataset"]["num_classes"]
    labels = image_labels_from_masks(layout, ids, num_classes)
    return {
        "segmentation": lambda: SegmentationDataset(
            layout, ids, layout.mask_dir, num_classes, crop_size=config["segmentation"]["crop_size"]
        ),
        "classification": lambda: ClassificationDataset(
            layout,
            ids,
            labels,
            num_classes,
            layout.mask_dir,
            input_size=config["classifier"]["input_size"],
            train=True,
            color_jitter=config["classifier"]["color_jitter"],
        ),
    }


def epoch_seconds(dataset) -> float:
    start = time.perf_counter()
    for index in range(len(dataset)):
        dataset[index]
    return time.perf_counter() - start


def main() -> None:
    torch.set_num_threads(1)
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    report = {"cpu_capability": torch.backends.cpu.get_cpu_capability(), "epochs": EPOCHS}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "synthetic"
        generate(
            root,
            seed=0,
            num_classes=config["dataset"]["num_classes"],
            **config["dataset"]["synthetic"],
        )
        for name, build in datasets(root, config).items():
            cached, uncached = build(), build()
            uncached.decoded = DecodedCache(max_bytes=0)
            times = {"cached": [], "uncached": []}
            for epoch in range(EPOCHS):
                order = ("cached", "uncached") if epoch % 2 == 0 else ("uncached", "cached")
                for which in order:
                    times[which].append(epoch_seconds(cached if which == "cached" else uncached))
            samples = len(cached)
            report[name] = {
                which: {
                    "samples_per_s_first_epoch": round(samples / seconds[0]),
                    "samples_per_s_later_epochs": round(samples / float(np.median(seconds[1:]))),
                }
                for which, seconds in times.items()
            }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
