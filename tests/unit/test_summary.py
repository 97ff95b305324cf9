"""Results table helpers, and the summary stage on tiny metric files: the label split, the
CAM-only mIoU at the best and the fixed threshold, and provenance."""

import json

import pytest

from i2crc_core.data.manifest import Manifest
from i2crc_core.infra.provenance import config_digest
from i2crc_core.stages import summary
from i2crc_core.stages.summary import experiment_row

CAMS = {
    "split": "train",
    "split_list": "train",
    "images": 2,
    "best_miou": 0.4,
    "best_threshold": 0.3,
    "fixed_miou": 0.35,
    "fixed_threshold": 0.15,
}
LABELS = {
    "split": "train",
    "split_list": "train",
    "images": 2,
    "miou_ignore_excluded": 0.7,
    "miou_ignore_as_background": 0.5,
    "ignored_fraction": 0.2,
    "iou_ignore_as_background": [0.9, 0.1],
}
SEGMENTATION = {
    "split": "val",
    "split_list": "val",
    "images": 1,
    "miou_ignore_excluded": 0.45,
    "iou_ignore_as_background": [0.8, 0.1],
}


def test_experiment_row_reports_pseudo_labels_both_ways_and_cams_at_both_thresholds():
    row = experiment_row(
        {"cams": CAMS, "labels_pseudo": LABELS, "segmentation_pseudo": SEGMENTATION}
    )
    assert row == {
        "cam_only_miou": 0.4,
        "cam_only_threshold": 0.3,
        "cam_only_fixed_miou": 0.35,
        "cam_only_fixed_threshold": 0.15,
        "pseudo_train_miou_ignore_excluded": 0.7,
        "pseudo_train_miou_ignore_as_bg": 0.5,
        "pseudo_train_ignored_fraction": 0.2,
        "seg_val_round1": 0.45,
    }


def _training_record(capability):
    return {
        "git": {"commit": "c0ffee", "dirty": False},
        "packages": {"python": "3.11.9", "torch": "2.14.1"},
        "device": {
            "machine": "x86_64",
            "cpu": "Xeon",
            "cpu_capability": capability,
            "threads": 1,
            "type": "cpu",
        },
    }


def test_summary_shows_the_label_split_and_what_produced_the_numbers(tmp_path):
    Manifest(
        root=str(tmp_path),
        image_dir="i",
        mask_dir="m",
        split_dir="s",
        num_classes=1,
        class_names=["cat"],
        ids={"train": ["a", "b", "c"], "val": ["v"]},
        image_labels={"train": {}, "val": {}},
        splits={"train": "train_aug", "val": "val"},
    ).save(tmp_path / "manifest.json")
    metrics, sidecars = {}, {}
    for name, result in (
        ("cams", CAMS),
        ("labels_pseudo", LABELS),
        ("segmentation_pseudo", SEGMENTATION),
    ):
        metrics[f"exp__{name}"] = tmp_path / f"{name}.json"
        metrics[f"exp__{name}"].write_text(json.dumps(result))
    for model, capability in (("classifier", "AVX512"), ("segmentation_pseudo", "AVX2")):
        sidecars[f"exp__{model}"] = tmp_path / f"{model}_model.json"
        sidecars[f"exp__{model}"].write_text(
            json.dumps({"provenance": _training_record(capability)})
        )
    (tmp_path / "saliency.json").write_text(
        json.dumps({"source": "simulated", "miou_all": 0.8, "miou_simple": 0.9})
    )
    config = {"seed": 0, "evaluation": {"label_split": "train"}}
    outputs = {
        name: tmp_path / "out" / name
        for name in ("summary.json", "summary.md", "summary.tsv", "per_class.tsv", "provenance.tsv")
    }
    summary.run(
        metric_paths=metrics,
        sidecar_paths=sidecars,
        saliency_path=tmp_path / "saliency.json",
        manifest_path=tmp_path / "manifest.json",
        experiments=["exp"],
        config=config,
        json_path=outputs["summary.json"],
        markdown_path=outputs["summary.md"],
        table_path=outputs["summary.tsv"],
        per_class_path=outputs["per_class.tsv"],
        provenance_path=outputs["provenance.tsv"],
    )

    result = json.loads(outputs["summary.json"].read_text())
    assert result["dataset"]["label_metrics_on"] == [{"split_list": "train", "images": 2}]
    assert result["experiments"]["exp"]["cam_only_fixed_miou"] == 0.35
    record = result["provenance"]
    assert record["summary"]["config_sha256"] == config_digest(config)
    assert set(record["summary"]) == {"config_sha256", "git", "packages", "device"}
    assert record["models"] == {
        "exp/classifier": _training_record("AVX512"),
        "exp/segmentation_pseudo": _training_record("AVX2"),
    }

    markdown = outputs["summary.md"].read_text()
    assert "scored on split list `train`, 2 of 3 training images" in markdown
    assert "segmentation on `val`, 1 image." in markdown
    # Percent, as in the summary over seeds (the JSON keeps fractions); thresholds as they are.
    assert (
        "Saliency maps (simulated): mIoU 80.0 % on all training images, 90.0 % on simple"
        in markdown
    )
    header, _, row = markdown.split("| experiment |")[1].splitlines()[:3]
    cells = dict(
        zip(
            ["experiment", *(c.strip() for c in header.split("|")[:-1])],
            (c.strip() for c in row.split("|")[1:-1]),
        )
    )
    assert cells["cam_only_fixed_miou"] == "35.0"
    assert cells["cam_only_fixed_threshold"] == f"{CAMS['fixed_threshold']:.2f}"
    assert f"config sha256 `{config_digest(config)}`" in markdown
    # One line per distinct training process, naming its models.
    assert "- trained on CPU Xeon (AVX512, 1 thread) at commit `c0ffee` (clean)" in markdown
    assert markdown.rstrip().endswith(": exp/segmentation_pseudo")

    rows = [line.split("\t") for line in outputs["provenance.tsv"].read_text().splitlines()]
    assert rows[0] == ["scope", "key", "value"]
    assert ["summary", "config_sha256", config_digest(config)] in rows
    assert ["exp/segmentation_pseudo", "device.cpu_capability", "AVX2"] in rows
    assert ["exp/classifier", "git.dirty", "False"] in rows


def test_the_fully_supervised_row_is_the_ceiling_every_row_is_a_fraction_of():
    rows = {
        "baseline": {"cam_only_miou": 0.3, "seg_val_round1": 0.4, "seg_val_retrain_refined": 0.5},
        "full": experiment_row({"segmentation_truth": {"miou_ignore_excluded": 0.8}}),
    }
    summary.add_fractions_of_full(rows)
    assert rows["full"] == {"seg_val_round1": 0.8}
    assert rows["baseline"]["seg_val_round1_of_full"] == pytest.approx(0.5)
    assert rows["baseline"]["seg_val_retrain_refined_of_full"] == pytest.approx(0.625)
    assert "cam_only_miou_of_full" not in rows["baseline"]
    # Without the row there is nothing to divide by.
    alone = {"baseline": {"seg_val_round1": 0.4}}
    summary.add_fractions_of_full(alone)
    assert alone == {"baseline": {"seg_val_round1": 0.4}}


def test_experiment_row_reports_the_classifiers_map():
    assert experiment_row({"classification": {"map": 0.97, "ap": [0.96, 0.98]}}) == {
        "cls_val_map": 0.97
    }
