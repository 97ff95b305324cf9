"""The VOC 2012 and COCO 2014 presets against small generated datasets in their layouts.

The dataset and saliency stages run for real on the fixtures; the GPU stages are dry-run
(the presets train VGG-16 / ResNet-101 for hours).
"""

import numpy as np
import pytest
import yaml

from i2crc_core.infra.config import deep_update
from i2crc_core.infra.fileio import write_gray, write_image, write_label
from tests.helpers.workflow_project import TINY_CONFIG, make_project

pytestmark = pytest.mark.pipeline


def write_dataset(root, *, num_classes, mask_dir, split_dir, splits, sizes):
    """Images of varied sizes with 1-2 object rectangles each, and saliency maps of half size."""
    rng = np.random.default_rng(0)
    labels = {}
    for split, ids in splits.items():
        (root / split_dir).mkdir(parents=True, exist_ok=True)
        (root / split_dir / f"{split}.txt").write_text("".join(i + "\n" for i in ids))
        for index, image_id in enumerate(ids):
            height, width = sizes[index % len(sizes)]
            mask = np.zeros((height, width), np.uint8)
            classes = rng.choice(np.arange(1, num_classes + 1), size=1 + index % 2, replace=False)
            for slot, class_id in enumerate(classes):
                mask[5 + 20 * slot : 20 + 20 * slot, 10:40] = class_id
            mask[0, :3] = 255
            write_image(
                root / "JPEGImages" / f"{image_id}.jpg",
                rng.integers(0, 255, (height, width, 3), dtype=np.uint8),
            )
            write_label(root / mask_dir / f"{image_id}.png", mask)
            write_gray(
                root.parent / "saliency" / f"{image_id}.png",
                ((mask[::2, ::2] > 0) * 255).astype(np.uint8),
            )
            labels[image_id] = sorted(int(c) for c in classes)
    return labels


def voc_project(tmp_path, splits, saliency):
    """The smoke project on a VOC-layout dataset at tmp_path/VOC2012 (40x48 images, 20 classes,
    saliency maps in tmp_path/saliency) with `saliency` as its saliency section; returns the
    dataset root and the project."""
    root = tmp_path / "VOC2012"
    write_dataset(
        root,
        num_classes=20,
        mask_dir="SegmentationClass",
        split_dir="ImageSets/Segmentation",
        splits=splits,
        sizes=[(40, 48)],
    )
    project = make_project(tmp_path / "project")
    project.write_config(
        deep_update(
            project.config,
            {
                "dataset": {"kind": "voc", "root": str(root), "num_classes": 20},
                "saliency": saliency,
            },
        )
    )
    return root, project


def run_preset(tmp_path, preset, dataset_overrides):
    project = make_project(tmp_path / "project")
    config = yaml.safe_load((project.root / "config" / preset).read_text())
    config["output_dir"] = "results"
    config["dataset"].update(dataset_overrides)
    config["saliency"]["folder"] = str(tmp_path / "saliency")
    project.write_config(config)
    project.snakemake("results/saliency/quality.json")
    return project, project.planned_jobs()


def assert_full_pipeline_planned(jobs, shards):
    # Two experiments with two rounds each, and the fully supervised row on the masks.
    assert jobs["train_classifier"] == 2 and jobs["train_segmentation"] == 2 * 2 + 1
    assert jobs["extract_cams"] == 2 * shards, "minutes of work per shard job"
    assert "prepare_dataset" not in jobs and "saliency" not in jobs


@pytest.mark.parametrize("labels_from", ["masks", "list"])
def test_voc12_preset(tmp_path, labels_from):
    root = tmp_path / "VOC2012"
    splits = {
        "train_aug": [f"2007_{i:06d}" for i in range(4)],
        "val": ["2008_000001", "2008_000002"],
    }
    labels = write_dataset(
        root,
        num_classes=20,
        mask_dir="SegmentationClassAug",
        split_dir="ImageSets/Segmentation",
        splits=splits,
        sizes=[(60, 80), (75, 50)],
    )
    overrides = {"root": str(root)}
    if labels_from == "list":
        listing = tmp_path / "train_cls.txt"
        listing.write_text(
            "".join(
                f"{image_id} " + " ".join(str(c - 1) for c in classes) + "\n"
                for image_id, classes in labels.items()
            )
        )
        overrides["image_labels"] = str(listing)
    project, jobs = run_preset(tmp_path, "voc12.yaml", overrides)
    assert_full_pipeline_planned(jobs, shards=2)
    manifest = yaml.safe_load((project.root / "results" / "dataset" / "manifest.json").read_text())
    assert manifest["class_names"][0] == "aeroplane" and len(manifest["class_names"]) == 20
    assert manifest["image_labels"]["train"] == {k: labels[k] for k in splits["train_aug"]}
    quality = yaml.safe_load((project.root / "results" / "saliency" / "quality.json").read_text())
    assert quality["images"] == 4


def test_coco14_preset(tmp_path):
    root = tmp_path / "coco2014"
    splits = {
        "train": [f"COCO_train2014_{i:012d}" for i in range(4)],
        "val": [f"COCO_val2014_{i:012d}" for i in range(2)],
    }
    labels = write_dataset(
        root,
        num_classes=80,
        mask_dir="SegmentationClass",
        split_dir="ImageSets",
        splits=splits,
        sizes=[(64, 64)],
    )
    project, jobs = run_preset(tmp_path, "coco14.yaml", {"root": str(root)})
    assert_full_pipeline_planned(jobs, shards=8)
    manifest = yaml.safe_load((project.root / "results" / "dataset" / "manifest.json").read_text())
    assert len(manifest["class_names"]) == 80 and manifest["class_names"][-1] == "toothbrush"
    assert manifest["image_labels"]["val"] == {k: labels[k] for k in splits["val"]}


@pytest.mark.parametrize("weights", ["pretrained", None])
def test_the_ablation_plans_the_pretraining_exactly_when_a_network_starts_from_it(
    tmp_path, weights
):
    overlay = {"classifier": {"weights": weights}, "segmentation": {"weights": weights}}
    project = make_project(tmp_path, deep_update(TINY_CONFIG, {**overlay, "output_dir": "results"}))
    jobs = project.planned_jobs("ablation")
    assert jobs.get("pretrain", 0) == (1 if weights == "pretrained" else 0)
    # Five rows, each with round 1 and both retrainings, and the fully supervised ceiling.
    assert jobs["train_classifier"] == 5 and jobs["train_segmentation"] == 16
