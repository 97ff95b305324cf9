"""The whole pipeline, run for real on a tiny synthetic configuration."""

import json
import zipfile

import h5py
import numpy as np
import pytest
import torch
from PIL import Image

from tests.helpers.workflow_project import RUN0

pytestmark = pytest.mark.pipeline


def test_default_target_produces_the_summary(finished_project):
    out = finished_project.root / RUN0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["experiments"]) == {"baseline", "i2crc", "full"}
    full = summary["experiments"].pop("full")
    truth = json.loads((out / "full" / "metrics" / "segmentation_truth.json").read_text())
    assert full == {"seg_val_round1": truth["miou_ignore_excluded"]}, "the ceiling: one number"
    # Every column is the number of the per-stage metrics file it names, nothing recomputed.
    sources = {
        "cls_val_map": ("classification", "map"),
        "cam_only_miou": ("cams", "best_miou"),
        "cam_only_threshold": ("cams", "best_threshold"),
        "cam_only_fixed_miou": ("cams", "fixed_miou"),
        "cam_only_fixed_threshold": ("cams", "fixed_threshold"),
        "seg_val_round1": ("segmentation_pseudo", "miou_ignore_excluded"),
        "seg_val_retrain_refined": ("segmentation_refined", "miou_ignore_excluded"),
        **{
            f"{prefix}_{column}": (f"labels_{labels}", key)
            for labels, prefix in (("pseudo", "pseudo_train"), ("refined", "refined_train"))
            for column, key in (
                ("miou_ignore_excluded", "miou_ignore_excluded"),
                ("miou_ignore_as_bg", "miou_ignore_as_background"),
                ("ignored_fraction", "ignored_fraction"),
            )
        },
    }
    for experiment, row in summary["experiments"].items():
        metrics = out / experiment / "metrics"
        expected = {
            column: json.loads((metrics / f"{name}.json").read_text())[key]
            for column, (name, key) in sources.items()
        }
        if full["seg_val_round1"]:  # a 4-iteration ceiling can score 0: no fractions then
            expected.update(
                {
                    f"{column}_of_full": expected[column] / full["seg_val_round1"]
                    for column in ("seg_val_round1", "seg_val_retrain_refined")
                }
            )
        assert row == expected, experiment
        for column in (
            "cls_val_map",
            "cam_only_miou",
            "pseudo_train_miou_ignore_as_bg",
            "seg_val_round1",
            "seg_val_retrain_refined",
        ):
            assert 0.0 <= row[column] <= 1.0
    assert 0.0 < summary["saliency"]["miou_all"] <= 1.0
    assert "| baseline |" in (out / "summary.md").read_text()
    over_seeds = json.loads((finished_project.root / "results" / "summary.json").read_text())
    assert over_seeds["seeds"] == [0]
    assert over_seeds["per_seed"]["0"] == {
        **summary,
        "experiments": {**summary["experiments"], "full": full},
    }
    assert over_seeds["aggregate"]["i2crc"]["cam_only_miou"]["values"] == [
        summary["experiments"]["i2crc"]["cam_only_miou"]
    ]
    assert Image.open(out / "figures" / "cams.png").size[0] > 100


def test_one_pretraining_per_seed_starts_every_classifier_and_segmenter(finished_project):
    out, config = finished_project.root / RUN0, finished_project.config
    backbone = torch.load(out / "pretraining" / "backbone.pth", weights_only=True)
    sidecar = json.loads((out / "pretraining" / "model.json").read_text())
    assert sidecar["trained_on"]["labels"].startswith("image-level labels only")
    # A BatchNorm layer counts its training steps: a model started from the pretrained backbone
    # goes on from the pretraining's count.
    started = int(backbone["0.1.num_batches_tracked"])
    images = config["dataset"]["synthetic"]["num_train"]
    classifier_steps = config["classifier"]["epochs"] * (
        images // config["classifier"]["batch_size"]
    )
    steps = {
        "baseline/classifier": classifier_steps,
        "i2crc/classifier": classifier_steps,
        "i2crc/segmentation/pseudo": config["segmentation"]["iterations"],
    }
    for model, own_steps in steps.items():
        state = torch.load(out / model / "model.pt", weights_only=True)["model"]
        assert int(state["backbone.0.1.num_batches_tracked"]) == started + own_steps, model


def test_cam_store_and_labels_have_the_documented_formats(finished_project):
    out = finished_project.root / RUN0
    manifest = json.loads((out / "dataset" / "manifest.json").read_text())
    train_ids = manifest["ids"]["train"]
    with h5py.File(out / "i2crc" / "cams" / "cams.h5") as store:
        first = store["cams"][train_ids[0]]
        assert first.dtype == np.float16
        assert len(first.attrs["class_ids"]) == first.shape[0]
    labels = sorted((out / "i2crc" / "labels" / "pseudo").glob("*.png"))
    assert len(labels) == len(train_ids)
    assert Image.open(labels[0]).mode == "P"
    for path in labels:
        image_id = path.stem
        allowed = {0, 255, *manifest["image_labels"]["train"][image_id]}
        assert set(np.unique(np.asarray(Image.open(path))).tolist()) <= allowed


def test_every_rule_wrote_a_log_and_a_benchmark(finished_project):
    out = finished_project.root / RUN0
    assert len(list((out / "benchmarks").rglob("*.tsv"))) >= 30
    assert "epoch 2/2" in (out / "logs" / "train_classifier" / "i2crc.log").read_text()


def test_second_run_does_nothing(finished_project):
    assert finished_project.planned_jobs() == {}


def test_an_integral_number_given_for_an_integer_key_is_that_integer(finished_project):
    """The smoke run pretrains 1 epoch: `1.0` from the command line is the same run (Snakemake
    compares the params' reprs, so a 1.0 kept as a float would rerun pretraining and everything
    after it, and `range(1.0)` ended the training in a TypeError)."""
    assert finished_project.config["pretraining"]["epochs"] == 1
    assert finished_project.planned_jobs("--config", "pretraining={epochs: 1.0}") == {}


def test_more_seeds_are_one_dag_that_reuses_the_finished_seed(finished_project):
    jobs = finished_project.planned_jobs("--config", "seeds=[0, 1]")
    assert jobs["train_classifier"] == 2 and jobs["generate_synthetic"] == 1, "seed 1 only"
    assert jobs["summary_seeds"] == 1


def test_ablation_target_adds_the_table_iv_rows(finished_project):
    jobs = finished_project.planned_jobs("ablation")
    assert jobs["train_classifier"] == 3, "cad, csd and cad_no_bg; baseline and i2crc are reused"
    assert jobs["train_segmentation"] == 3 * 3 + 2, (
        "the ablations' round 1 and both retrainings + the others' retraining unrefined"
    )
    assert jobs["summary_ablation"] == 1
    assert jobs["ablation_tables"] == 1, "Tables IV and V over seeds"


def test_paper_target_adds_the_lambda_sweep_to_the_ablation(finished_project):
    jobs = finished_project.planned_jobs("paper")
    # Each λ at 4 values, the others at i2crc's; λ_bg = 0 and λ_csd = 0 are the ablation's
    # cad_no_bg and cad, trained once.
    sweep = 3 * 4 - 2
    assert jobs["train_classifier"] == 3 + sweep
    assert jobs["train_segmentation"] == 3 * 3 + 2 + sweep, (
        "Table IV as in `ablation`, round 1 per λ"
    )
    assert jobs["summary_sweep"] == 1 and jobs["summary_sweep_seeds"] == 1
    assert jobs["ablation_tables"] == 1 and jobs["sweep_table"] == 1, "Tables IV, V and VIII"


def test_html_report_holds_the_table_and_the_figure(finished_project, tmp_path):
    report = tmp_path / "report.zip"
    finished_project.snakemake("--report", str(report))
    with zipfile.ZipFile(report) as bundle:
        names = bundle.namelist()
    assert any(name.endswith("summary.tsv") for name in names)
    assert any(name.endswith("per_class_iou.tsv") for name in names)
    assert any(name.endswith("cams.png") for name in names)
