"""The dense CRF's effect and cost (segmentation.crf): val mIoU of finished segmenters with and
without it, and its time per image.

    python bench/bench_crf.py [--results results] [--seeds 0 1 2 3 4]

Prints one JSON object. For each seed, the segmenters of a finished benchmark run
(<results>/seed<N>: the i2crc experiment's rounds 1 and 2, and the fully supervised one) label
the val images through the library's own inference (inference.predict_labels, the predict
stage's scales) and metrics (metrics.LabelEvaluator, the evaluate stage's), once as they are
and once through the CRF at the schema's parameters (deeplab-pytorch's VOC ones). A second CRF
setting, declared here and not chosen on these results, shrinks the bilateral kernel's spatial
extent by the ratio of the images' size to VOC's (~500 px): the VOC parameters assume photos.
`plain_matches_pipeline` checks the run without CRF against the mIoU the pipeline recorded.

The CRF's time per image is measured on the benchmark's images and, for the cost on VOC, on a
photograph (matplotlib's sample grace_hopper.jpg) at 375x500 with 21 classes and smooth
stride-8 probabilities; one process, one thread (the CRF holds the GIL).
"""

import argparse
import json
import os
import platform
import subprocess
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2  # noqa: E402
import matplotlib.cbook  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from i2crc_core.data.datasets import ImageDataset  # noqa: E402
from i2crc_core.data.manifest import Manifest  # noqa: E402
from i2crc_core.infra.config import defaults  # noqa: E402
from i2crc_core.infra.fileio import read_label  # noqa: E402
from i2crc_core.method.crf import DenseCRF, dense_crf, settings  # noqa: E402
from i2crc_core.method.metrics import LabelEvaluator  # noqa: E402
from i2crc_core.nets.checkpoints import load_model  # noqa: E402
from i2crc_core.nets.device import CPU  # noqa: E402
from i2crc_core.nets.inference import predict_labels  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
# segmenter folder under seed<N>/ -> what it is
MODELS = {
    "i2crc/segmentation/pseudo": "i2crc round 1 (pseudo labels)",
    "i2crc/segmentation/refined": "i2crc round 2 (refined labels)",
    "full/segmentation/truth": "fully supervised (ground truth)",
}
METRICS = {
    "i2crc/segmentation/pseudo": "i2crc/metrics/segmentation_pseudo.json",
    "i2crc/segmentation/refined": "i2crc/metrics/segmentation_refined.json",
    "full/segmentation/truth": "full/metrics/segmentation_truth.json",
}
VOC_SIDE = 500
VOC_CLASSES = 21
VOC_TIMING_IMAGES = 5


class TimedCRF:
    """A DenseCRF that adds up the seconds it runs and the images it labels."""

    def __init__(self, crf_settings: dict):
        self.crf = DenseCRF(crf_settings)
        self.seconds, self.images = 0.0, 0

    def __call__(self, probabilities, images):
        start = time.perf_counter()
        labels = self.crf(probabilities, images)
        self.seconds += time.perf_counter() - start
        self.images += len(images)
        return labels


def evaluate(model, manifest: Manifest, scales, crf) -> dict:
    """Val mIoU (ignore excluded) of `model`'s labels, through `crf` when given."""
    layout = manifest.layout()
    evaluator = LabelEvaluator(manifest.num_classes + 1)
    for image_id in manifest.ids["val"]:
        image = ImageDataset(layout, [image_id])[0]["image"][None]
        labels = predict_labels(model, image, scales, crf)[0]
        evaluator.update(read_label(layout.mask_path(image_id), manifest.num_classes), labels)
    return evaluator.result()


def seed_rows(results: Path, seed: int, scales, variants: dict) -> list[dict]:
    run = results / f"seed{seed}"
    manifest = Manifest.load(run / "dataset" / "manifest.json")
    # the manifest names the dataset where the run made it; it lives beside the manifest
    manifest = replace(manifest, root=str(run / "dataset" / "synthetic"))
    rows = []
    for folder, what in MODELS.items():
        if not (run / folder / "model.pt").is_file():
            continue
        model = load_model(run / folder / "model.pt", CPU, expected_kind="segmenter").eval()
        plain = evaluate(model, manifest, scales, None)["miou_ignore_excluded"]
        recorded = json.loads((run / METRICS[folder]).read_text())["miou_ignore_excluded"]
        row = {
            "seed": seed,
            "model": folder,
            "what": what,
            "val_images": len(manifest.ids["val"]),
            "miou_plain": round(plain, 4),
            "plain_matches_pipeline": abs(plain - recorded) < 1e-9,
        }
        for name, crf_settings in variants.items():
            timed = TimedCRF(crf_settings)
            miou = evaluate(model, manifest, scales, timed)["miou_ignore_excluded"]
            row[f"miou_{name}"] = round(miou, 4)
            row[f"delta_{name}"] = round(miou - plain, 4)
            row[f"crf_ms_per_image_{name}"] = round(1e3 * timed.seconds / timed.images, 2)
        rows.append(row)
    return rows


def voc_sized_timing(crf_settings: dict) -> dict:
    """Seconds per image of the CRF on a photograph at 375x500, 21 classes."""
    photo = cv2.imread(str(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    photo = cv2.cvtColor(
        cv2.resize(photo, (VOC_SIDE, 375), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB
    )
    generator = torch.Generator().manual_seed(0)
    seconds = []
    for _ in range(VOC_TIMING_IMAGES):
        # logits at output stride 8, upsampled as the segmenter's are: smooth class regions
        coarse = 4 * torch.randn(1, VOC_CLASSES, 47, 63, generator=generator)
        logits = F.interpolate(coarse, size=(375, VOC_SIDE), mode="bilinear", align_corners=False)
        probabilities = logits.softmax(dim=1)[0].numpy()
        start = time.perf_counter()
        dense_crf(probabilities, photo, **crf_settings)
        seconds.append(time.perf_counter() - start)
    return {
        "image": "matplotlib sample grace_hopper.jpg resized to 375x500",
        "classes": VOC_CLASSES,
        "images": VOC_TIMING_IMAGES,
        "crf_s_per_image_median": round(float(np.median(seconds)), 3),
    }


def machine() -> dict:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in subprocess.run(
                ["lscpu"], capture_output=True, text=True
            ).stdout.splitlines()
            if line.startswith("Model name")
        ),
        platform.processor(),
    )
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    return {
        "cpu": model,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "commit": commit,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=REPO / "results")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = parser.parse_args()
    torch.set_num_threads(1)
    every = defaults()
    config = every["segmentation"]
    voc = settings({**config["crf"], "enabled": True})
    image_side = every["dataset"]["synthetic"]["image_size"]
    scaled = {**voc, "bi_xy_std": round(voc["bi_xy_std"] * image_side / VOC_SIDE, 2)}
    variants = {"crf_voc": voc, "crf_scaled": scaled}
    rows = [
        row
        for seed in args.seeds
        for row in seed_rows(args.results, seed, config["inference_scales"], variants)
    ]
    summary = {}
    for folder in MODELS:
        chosen = [row for row in rows if row["model"] == folder]
        if chosen:
            summary[folder] = {
                f"mean_delta_{name}": round(
                    float(np.mean([row[f"delta_{name}"] for row in chosen])), 4
                )
                for name in variants
            }
            summary[folder]["seeds"] = len(chosen)
    print(
        json.dumps(
            {
                "benchmark": "crf",
                "machine": machine(),
                "variants": variants,
                "inference_scales": config["inference_scales"],
                "rows": rows,
                "mean_deltas": summary,
                "voc_sized": voc_sized_timing(voc),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
