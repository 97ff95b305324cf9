"""Stage: metrics of label sets (pseudo, refined, predicted) and of CAMs against the truth."""

import logging
from pathlib import Path

from tqdm import tqdm

from ..data.manifest import LabelSplit, Manifest
from ..infra.camstore import CamStore
from ..infra.fileio import read_label, write_json
from ..method.metrics import CamSweep, LabelEvaluator

log = logging.getLogger(__name__)


def _scored_images(manifest: Manifest, role: str, label_split_path) -> tuple[dict, list[str]]:
    """Which images a metric scores: the role's, or the label split's (a validated subset of
    the training images, prepare_dataset.label_split); recorded in the metrics file."""
    if label_split_path is None:
        name, ids = manifest.split_name(role), manifest.ids[role]
    else:
        chosen = LabelSplit.load(label_split_path)
        name, ids = chosen.split, chosen.ids
    return {"split": role, "split_list": name, "images": len(ids)}, ids


def labels(*, manifest_path, label_dir, split, out_path, label_split_path=None):
    """mIoU of the PNG labels in `label_dir` over a split (training labels: over the label
    split's images), with ignore both ways (docs/method.md §7)."""
    manifest = Manifest.load(manifest_path)
    layout = manifest.layout()
    scored, ids = _scored_images(manifest, split, label_split_path)
    evaluator = LabelEvaluator(manifest.num_classes + 1)
    for image_id in tqdm(ids, desc=f"evaluate {scored['split_list']}", mininterval=10):
        truth = read_label(layout.mask_path(image_id), manifest.num_classes)
        predicted = read_label(Path(label_dir) / f"{image_id}.png", manifest.num_classes)
        evaluator.update(truth, predicted)
    result = {"class_names": ["background", *manifest.class_names], **evaluator.result()}
    log.info(
        "%s (%d images): mIoU ignore excluded %.4f, ignore as background %.4f, "
        "ignored fraction %.4f",
        scored["split_list"],
        scored["images"],
        result["miou_ignore_excluded"],
        result["miou_ignore_as_background"],
        result["ignored_fraction"],
    )
    write_json(out_path, {**scored, **result})


def cams(*, manifest_path, cams_path, thresholds, fixed_threshold, out_path, label_split_path=None):
    """CAM-only mIoU on the training images (the label split's) over a sweep of background
    thresholds, and at the fixed threshold."""
    manifest = Manifest.load(manifest_path)
    layout = manifest.layout()
    scored, ids = _scored_images(manifest, "train", label_split_path)
    sweep = CamSweep(manifest.num_classes + 1, thresholds, fixed=fixed_threshold)
    with CamStore(cams_path) as store:
        for image_id in tqdm(ids, desc="evaluate cams", mininterval=10):
            cam, class_ids = store[image_id]
            sweep.update(
                read_label(layout.mask_path(image_id), manifest.num_classes), cam, class_ids
            )
    result = sweep.result()
    if result["best_at_edge"]:
        log.warning("best CAM threshold %s is at the edge of the sweep", result["best_threshold"])
    log.info(
        "CAM-only mIoU %.4f at the best threshold %s, %.4f at the fixed threshold %s",
        result["best_miou"],
        result["best_threshold"],
        result["fixed_miou"],
        result["fixed_threshold"],
    )
    write_json(out_path, {**scored, **result})
