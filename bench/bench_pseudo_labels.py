"""Throughput of pseudo_label + palette PNG write on VOC-sized inputs (single thread).

Prints one JSON object. Inputs: 375x500, 1-3 classes, smooth synthetic CAMs and saliency
(see _synthetic_maps.py); a pool of 20 distinct inputs is cycled over 200 images so input
generation stays outside the timing. Target: >= 100 images/s including the PNG write.
"""

import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _synthetic_maps as maps  # noqa: E402
import numpy as np  # noqa: E402

from i2crc_core.infra.config import defaults  # noqa: E402
from i2crc_core.infra.fileio import write_label  # noqa: E402
from i2crc_core.method.pseudo_labels import pseudo_label  # noqa: E402

NUM_IMAGES = 200
POOL = 20
THRESHOLDS = defaults()["pseudo_labels"]


def main() -> None:
    rng = np.random.default_rng(0)
    pool = []
    for _ in range(POOL):
        cams, class_ids = maps.cams(rng)
        pool.append((cams, class_ids, maps.saliency(rng)))
    label_seconds = write_seconds = 0.0
    ignored = []
    with tempfile.TemporaryDirectory() as directory:
        start = time.perf_counter()
        for index in range(NUM_IMAGES):
            cams, class_ids, saliency = pool[index % POOL]
            t0 = time.perf_counter()
            label = pseudo_label(cams, class_ids, saliency, **THRESHOLDS)
            t1 = time.perf_counter()
            write_label(Path(directory) / f"{index:05d}.png", label)
            t2 = time.perf_counter()
            label_seconds += t1 - t0
            write_seconds += t2 - t1
            ignored.append(float(np.mean(label == 255)))
        total = time.perf_counter() - start
    print(
        json.dumps(
            {
                "benchmark": "pseudo_labels",
                "images": NUM_IMAGES,
                "size_hw": [maps.HEIGHT, maps.WIDTH],
                "classes_per_image": "1-3",
                "images_per_s": round(NUM_IMAGES / total, 1),
                "pseudo_label_ms": round(1e3 * label_seconds / NUM_IMAGES, 2),
                "write_label_ms": round(1e3 * write_seconds / NUM_IMAGES, 2),
                "mean_ignored_fraction": round(float(np.mean(ignored)), 3),
                "target_images_per_s": 100,
            }
        )
    )


if __name__ == "__main__":
    main()
