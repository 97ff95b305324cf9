"""Stage: the results table (JSON, Markdown, TSV) and per-class IoU of every experiment.

Columns follow the paper: CAM-only mIoU (Table V style, no saliency), CAM pseudo labels on
train (Table V "Mask"), refined labels on train, segmentation on val after the first
training and after retraining (Table IV), and the saliency maps' own mIoU (Table VI).
Pseudo labels are reported both ways (docs/method.md §7): ignored pixels left out, and counted as
background, with the ignored fraction.
"""

import json
import logging
from collections import defaultdict

from ..fileio import atomic_path
from ..manifest import Manifest

log = logging.getLogger(__name__)

SEGMENTATION_ROUNDS = {
    "segmentation_pseudo": "seg_val_round1",
    "segmentation_refined": "seg_val_retrain_refined",
    "segmentation_predicted": "seg_val_retrain_unrefined",
}
LABEL_SETS = {"labels_pseudo": "pseudo_train", "labels_refined": "refined_train"}


def experiment_row(metrics: dict) -> dict:
    row = {}
    if "cams" in metrics:
        row["cam_only_miou"] = metrics["cams"]["best_miou"]
        row["cam_only_threshold"] = metrics["cams"]["best_threshold"]
    for key, prefix in LABEL_SETS.items():
        if key in metrics:
            row[f"{prefix}_miou_ignore_excluded"] = metrics[key]["miou_ignore_excluded"]
            row[f"{prefix}_miou_ignore_as_bg"] = metrics[key]["miou_ignore_as_background"]
            row[f"{prefix}_ignored_fraction"] = metrics[key]["ignored_fraction"]
    for key, column in SEGMENTATION_ROUNDS.items():
        if key in metrics:
            row[column] = metrics[key]["miou_ignore_excluded"]
    return row


def _cell(value) -> str:
    return "—" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


def markdown_table(rows: dict[str, dict], columns: list[str]) -> str:
    lines = [
        "| experiment | " + " | ".join(columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for name, row in rows.items():
        lines.append(f"| {name} | " + " | ".join(_cell(row.get(c)) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def per_class_rows(metrics_by_experiment: dict, class_names: list[str]) -> list[list[str]]:
    rows = [["experiment", "labels", *class_names]]
    for experiment, metrics in metrics_by_experiment.items():
        for key, result in metrics.items():
            if key == "cams":
                continue
            per_class = result["iou_ignore_as_background"]
            rows.append([experiment, key, *(_cell(value) for value in per_class)])
    return rows


def _write_tsv(path, rows: list[list[str]]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text("".join("\t".join(row) + "\n" for row in rows))


def run(*, metric_paths, saliency_path, manifest_path, experiments, json_path, markdown_path,
        table_path, per_class_path):
    metrics = defaultdict(dict)
    for key, path in metric_paths.items():
        experiment, name = key.rsplit("__", 1)
        with open(path) as handle:
            metrics[experiment][name] = json.load(handle)
    with open(saliency_path) as handle:
        saliency = json.load(handle)
    manifest = Manifest.load(manifest_path)
    rows = {experiment: experiment_row(metrics[experiment]) for experiment in experiments}
    columns = list(dict.fromkeys(column for row in rows.values() for column in row))
    summary = {
        "dataset": {"num_classes": manifest.num_classes,
                    "train_images": len(manifest.ids["train"]),
                    "val_images": len(manifest.ids["val"])},
        "saliency": saliency,
        "experiments": rows,
    }
    with atomic_path(json_path) as tmp:
        tmp.write_text(json.dumps(summary, indent=1))
    with atomic_path(markdown_path) as tmp:
        tmp.write_text(
            "# I2CRC results\n\n"
            f"Saliency maps ({saliency['source']}): mIoU {saliency['miou_all']:.4f} on all "
            f"training images, {saliency['miou_simple']:.4f} on simple ones.\n\n"
            + markdown_table(rows, columns)
        )
    _write_tsv(
        table_path,
        [["experiment", *columns]]
        + [[name, *(_cell(row.get(c)) for c in columns)] for name, row in rows.items()],
    )
    _write_tsv(per_class_path, per_class_rows(metrics, ["background", *manifest.class_names]))
    log.info("summary:\n%s", markdown_table(rows, columns))
