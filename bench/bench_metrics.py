"""Throughput of the metric accumulators on VOC-sized uint8 label pairs (single thread).

Prints one JSON object. 100 pairs of 375x500 labels with 21 classes and ~5 % ignore
(a pool of 10 pairs cycled). Target: ConfusionMatrix.update >= 100 M pixels/s.
Also times LabelEvaluator.update and CamSweep.update (1-3 classes, 19 thresholds).
"""

import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _synthetic_maps as maps  # noqa: E402
import numpy as np  # noqa: E402

from i2crc_core.method.metrics import CamSweep, ConfusionMatrix, LabelEvaluator  # noqa: E402

NUM_PAIRS = 100
POOL = 10
NUM_CLASSES = 21


def label(rng) -> np.ndarray:
    values = rng.integers(0, NUM_CLASSES, (maps.HEIGHT, maps.WIDTH)).astype(np.uint8)
    values[rng.random(values.shape) < 0.05] = 255
    return values


def rate(update, pairs) -> float:
    start = time.perf_counter()
    for index in range(NUM_PAIRS):
        update(*pairs[index % POOL])
    seconds = time.perf_counter() - start
    return NUM_PAIRS * maps.HEIGHT * maps.WIDTH / seconds / 1e6


def main() -> None:
    rng = np.random.default_rng(0)
    pairs = [(label(rng), label(rng)) for _ in range(POOL)]
    confusion = ConfusionMatrix(NUM_CLASSES)
    evaluator = LabelEvaluator(NUM_CLASSES)
    confusion_rate = rate(confusion.update, pairs)
    evaluator_rate = rate(evaluator.update, pairs)

    sweep = CamSweep(NUM_CLASSES, np.round(np.arange(0.05, 1.0, 0.05), 2))
    cam_items = [(pairs[i][0], *maps.cams(rng)) for i in range(POOL)]
    start = time.perf_counter()
    for index in range(NUM_PAIRS):
        sweep.update(*cam_items[index % POOL])
    sweep_seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "benchmark": "metrics",
                "pairs": NUM_PAIRS,
                "size_hw": [maps.HEIGHT, maps.WIDTH],
                "num_classes": NUM_CLASSES,
                "confusion_update_mpix_per_s": round(confusion_rate, 1),
                "label_evaluator_update_mpix_per_s": round(evaluator_rate, 1),
                "cam_sweep_19_thresholds_images_per_s": round(NUM_PAIRS / sweep_seconds, 1),
                "target_mpix_per_s": 100,
            }
        )
    )


if __name__ == "__main__":
    main()
