"""Stage: the results table (JSON, Markdown, TSV) and per-class IoU of every experiment.

Columns follow the paper: the classifier's image-level mAP on val, CAM-only mIoU (Table V
style, no saliency), CAM pseudo labels on train (Table V "Mask"), refined labels on train,
segmentation on val after the first training and after retraining (Table IV), and the saliency
maps' own mIoU (Table VI). The row `full`, the segmenter trained on the ground truth, is the
ceiling: every other row's segmentation is also given as a fraction of it (`..._of_full`).
Pseudo labels are reported both ways (docs/method.md §7): ignored pixels left out, and counted as
background, with the ignored fraction. CAM-only is reported at the sweep's best background
threshold (chosen with the ground truth) and at the fixed `evaluation.cam_threshold`.

Provenance: what produced the numbers — the config digest, commit, package versions and device
of the summary's process, and of each training process as its model's sidecar recorded it —
goes to summary.json, provenance.tsv (the report) and a footer of summary.md, both written as
provenance.py words them.
"""

import json
import logging
from collections import defaultdict

from ..data.manifest import Manifest
from ..infra.config import FULL_SUPERVISION
from ..infra.fileio import write_json, write_text
from ..infra.provenance import collect, counted, provenance_footer, provenance_rows
from ..report import markdown

log = logging.getLogger(__name__)

SEGMENTATION_ROUNDS = {
    "segmentation_pseudo": "seg_val_round1",
    "segmentation_refined": "seg_val_retrain_refined",
    "segmentation_predicted": "seg_val_retrain_unrefined",
    "segmentation_truth": "seg_val_round1",  # the fully supervised row's one training
}
LABEL_SETS = {"labels_pseudo": "pseudo_train", "labels_refined": "refined_train"}


def experiment_row(metrics: dict) -> dict:
    row = {}
    if "classification" in metrics:
        row["cls_val_map"] = metrics["classification"]["map"]
    if "cams" in metrics:
        row["cam_only_miou"] = metrics["cams"]["best_miou"]
        row["cam_only_threshold"] = metrics["cams"]["best_threshold"]
        row["cam_only_fixed_miou"] = metrics["cams"]["fixed_miou"]
        row["cam_only_fixed_threshold"] = metrics["cams"]["fixed_threshold"]
    for key, prefix in LABEL_SETS.items():
        if key in metrics:
            row[f"{prefix}_miou_ignore_excluded"] = metrics[key]["miou_ignore_excluded"]
            row[f"{prefix}_miou_ignore_as_bg"] = metrics[key]["miou_ignore_as_background"]
            row[f"{prefix}_ignored_fraction"] = metrics[key]["ignored_fraction"]
    for key, column in SEGMENTATION_ROUNDS.items():
        if key in metrics:
            row[column] = metrics[key]["miou_ignore_excluded"]
    return row


def add_fractions_of_full(rows: dict[str, dict]) -> None:
    """Every weakly supervised row's segmentation as a fraction of the fully supervised row's
    (`<column>_of_full`), when the summary has that row."""
    ceiling = rows.get(FULL_SUPERVISION, {}).get("seg_val_round1")
    if not ceiling:
        return
    for experiment, row in rows.items():
        if experiment != FULL_SUPERVISION:
            row.update(
                {
                    f"{column}_of_full": row[column] / ceiling
                    for column in dict.fromkeys(SEGMENTATION_ROUNDS.values())
                    if column in row
                }
            )


def _cell(value) -> str:
    return "—" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


def _percent_cell(column: str, value) -> str:
    """A metric in percent, as in the summary over seeds; a threshold as the CAM value it is."""
    if value is None:
        return "—"
    return f"{value:.2f}" if column.endswith("_threshold") else f"{100 * value:.1f}"


def markdown_table(rows: dict[str, dict], columns: list[str]) -> str:
    cells = [[name, *(_percent_cell(c, row.get(c)) for c in columns)] for name, row in rows.items()]
    return "\n".join(markdown.table(["experiment", *columns], cells)) + "\n"


def per_class_rows(metrics_by_experiment: dict, class_names: list[str]) -> list[list[str]]:
    rows = [["experiment", "labels", *class_names]]
    for experiment, metrics in metrics_by_experiment.items():
        for key, result in metrics.items():
            if key in ("cams", "classification"):  # no per-class IoU
                continue
            per_class = result["iou_ignore_as_background"]
            rows.append([experiment, key, *(_cell(value) for value in per_class)])
    return rows


def _write_tsv(path, rows: list[list[str]]) -> None:
    write_text(path, "".join("\t".join(row) + "\n" for row in rows))


def label_images(metrics_by_experiment: dict) -> list[dict]:
    """The split lists that the training-image metrics scored, with their image counts (one,
    unless metrics files of different label splits were mixed)."""
    scored = {
        (result["split_list"], result["images"])
        for metrics in metrics_by_experiment.values()
        for result in metrics.values()
        if result["split"] == "train"
    }
    return [{"split_list": name, "images": images} for name, images in sorted(scored)]


def markdown_summary(
    saliency: dict, manifest: Manifest, scored: list[dict], table: str, provenance: dict
) -> str:
    scored_text = "; ".join(
        f"split list `{item['split_list']}`, {item['images']:,} of "
        f"{counted(len(manifest.ids['train']), 'training image')}"
        for item in scored
    )
    return (
        "# I2CRC results\n\n"
        f"Saliency maps ({saliency['source']}): mIoU {100 * saliency['miou_all']:.1f} % on all "
        f"training images, {100 * saliency['miou_simple']:.1f} % on simple ones.\n\n"
        f"CAM-only, pseudo and refined labels scored on {scored_text}; segmentation on "
        f"`{manifest.split_name('val')}`, {counted(len(manifest.ids['val']), 'image')}. CAM-only "
        "at the best background threshold (chosen with the ground truth) and at the fixed one "
        "(`evaluation.cam_threshold`). mIoU, mAP and fractions in percent; thresholds as CAM "
        "values.\n\n" + table + "\n" + provenance_footer(provenance)
    )


def run(
    *,
    metric_paths,
    sidecar_paths,
    saliency_path,
    manifest_path,
    experiments,
    config,
    json_path,
    markdown_path,
    table_path,
    per_class_path,
    provenance_path,
):
    metrics = defaultdict(dict)
    for key, path in metric_paths.items():
        experiment, name = key.rsplit("__", 1)
        with open(path) as handle:
            metrics[experiment][name] = json.load(handle)
    models = {}
    for key, path in sidecar_paths.items():
        with open(path, encoding="utf-8") as handle:
            models[key.replace("__", "/")] = json.load(handle)["provenance"]
    with open(saliency_path) as handle:
        saliency = json.load(handle)
    manifest = Manifest.load(manifest_path)
    rows = {experiment: experiment_row(metrics[experiment]) for experiment in experiments}
    add_fractions_of_full(rows)
    columns = list(dict.fromkeys(column for row in rows.values() for column in row))
    scored = label_images(metrics)
    provenance = {"summary": collect(config=config), "models": models}
    summary = {
        "dataset": {
            "num_classes": manifest.num_classes,
            "train_images": len(manifest.ids["train"]),
            "val_images": len(manifest.ids["val"]),
            "label_metrics_on": scored,
        },
        "saliency": saliency,
        "experiments": rows,
        "provenance": provenance,
    }
    write_json(json_path, summary)
    write_text(
        markdown_path,
        markdown_summary(saliency, manifest, scored, markdown_table(rows, columns), provenance),
    )
    _write_tsv(
        table_path,
        [["experiment", *columns]]
        + [[name, *(_cell(row.get(c)) for c in columns)] for name, row in rows.items()],
    )
    _write_tsv(per_class_path, per_class_rows(metrics, ["background", *manifest.class_names]))
    _write_tsv(provenance_path, provenance_rows(provenance))
    log.info("summary:\n%s", markdown_table(rows, columns))
