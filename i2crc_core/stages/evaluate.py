"""Stage: metrics of label sets (pseudo, refined, predicted) and of CAMs against the truth."""

import json
import logging
from pathlib import Path

from tqdm import tqdm

from ..camstore import CamStore
from ..fileio import atomic_path, read_label
from ..manifest import Manifest
from ..metrics import CamSweep, LabelEvaluator

log = logging.getLogger(__name__)


def _write_json(path, result: dict) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(result, indent=1))


def labels(*, manifest_path, label_dir, split, out_path):
    """mIoU of the PNG labels in `label_dir` over a split, with ignore both ways (docs/method.md §7)."""
    manifest = Manifest.load(manifest_path)
    layout = manifest.layout()
    evaluator = LabelEvaluator(manifest.num_classes + 1)
    for image_id in tqdm(manifest.ids[split], desc=f"evaluate {split}", mininterval=10):
        truth = read_label(layout.mask_path(image_id), manifest.num_classes)
        predicted = read_label(Path(label_dir) / f"{image_id}.png", manifest.num_classes)
        evaluator.update(truth, predicted)
    result = {"class_names": ["background", *manifest.class_names], **evaluator.result()}
    log.info(
        "mIoU ignore excluded %.4f, ignore as background %.4f, ignored fraction %.4f",
        result["miou_ignore_excluded"],
        result["miou_ignore_as_background"],
        result["ignored_fraction"],
    )
    _write_json(out_path, {"split": split, "images": len(manifest.ids[split]), **result})


def cams(*, manifest_path, cams_path, thresholds, out_path):
    """CAM-only mIoU on the training images over a sweep of background thresholds."""
    manifest = Manifest.load(manifest_path)
    layout = manifest.layout()
    sweep = CamSweep(manifest.num_classes + 1, thresholds)
    with CamStore(cams_path) as store:
        for image_id in tqdm(manifest.ids["train"], desc="evaluate cams", mininterval=10):
            cam, class_ids = store[image_id]
            sweep.update(read_label(layout.mask_path(image_id), manifest.num_classes), cam, class_ids)
    result = sweep.result()
    if result["best_at_edge"]:
        log.warning("best CAM threshold %s is at the edge of the sweep", result["best_threshold"])
    log.info("CAM-only mIoU %.4f at threshold %s", result["best_miou"], result["best_threshold"])
    _write_json(out_path, result)
