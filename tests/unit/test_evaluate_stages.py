"""The evaluation stages on a tiny dataset with by-hand numbers: training-label metrics over
the label split's images only, the split list and image count recorded, and the CAM-only mIoU
at the best and at a fixed background threshold."""

import json

import numpy as np
import pytest

from i2crc_core.data.manifest import Manifest
from i2crc_core.infra.camstore import CamStoreWriter
from i2crc_core.infra.fileio import write_label
from i2crc_core.stages import evaluate, evaluate_classifier, prepare_dataset

IGN = 255
# Images of 1 x 4 pixels; "a" is the only image of the split list "small".
TRUTH = {"a": [0, 1, 1, 0], "b": [0, 2, 2, 2], "c": [1, 1, 0, 0], "v": [0, 2, 2, 0]}
PREDICTED = {"a": [0, 1, IGN, 0], "b": [0, 0, 0, 0], "c": [1, 1, 0, 0], "v": [0, 2, 0, 0]}
# CAMs exact in float16 (the store's precision) and away from every threshold used below.
CAMS = {
    "a": ([1], [0.0625, 0.75, 0.25, 0.5]),
    "b": ([2], [0.5, 0.75, 1.0, 0.0625]),
    "c": ([1], [0.75, 0.25, 0.0625, 0.0625]),
}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate")
    for image_id, label in TRUTH.items():
        write_label(root / "SegmentationClass" / f"{image_id}.png", np.array([label], np.uint8))
        write_label(
            root / "predicted" / f"{image_id}.png", np.array([PREDICTED[image_id]], np.uint8)
        )
    (root / "lists").mkdir()
    (root / "lists" / "small.txt").write_text("a\n")
    Manifest(
        root=str(root),
        image_dir="JPEGImages",
        mask_dir="SegmentationClass",
        split_dir="lists",
        num_classes=2,
        class_names=["cat", "dog"],
        ids={"train": ["a", "b", "c"], "val": ["v"]},
        image_labels={"train": {"a": [1], "b": [2], "c": [1]}, "val": {"v": [2]}},
        splits={"train": "big", "val": "v_list"},
    ).save(root / "manifest.json")
    with CamStoreWriter(root / "cams.h5") as writer:
        for image_id, (class_ids, cam) in CAMS.items():
            writer.write(image_id, np.array([[cam]], np.float32), class_ids)
    for name, split in (("small", "small"), ("all", None)):
        prepare_dataset.label_split(
            manifest_path=root / "manifest.json",
            split=split,
            out_path=root / f"label_split_{name}.json",
        )
    return root


def _labels(root, split, label_split=None):
    out = root / f"labels_{split}_{label_split}.json"
    evaluate.labels(
        manifest_path=root / "manifest.json",
        label_dir=root / "predicted",
        split=split,
        out_path=out,
        label_split_path=label_split and root / f"label_split_{label_split}.json",
    )
    return json.loads(out.read_text())


def test_training_labels_are_scored_on_the_label_split_only(dataset):
    result = _labels(dataset, "train", "small")
    assert (result["split"], result["split_list"], result["images"]) == ("train", "small", 1)
    # Image "a" alone: ignore excluded, (1, 255) drops out and both classes are perfect; as
    # background, bg 2/3 and cat 1/2; one of 4 pixels ignored.
    assert result["miou_ignore_excluded"] == pytest.approx(1.0)
    assert result["miou_ignore_as_background"] == pytest.approx(7 / 12)
    assert result["ignored_fraction"] == pytest.approx(1 / 4)
    assert result["iou_ignore_excluded"][2] is None, "dog is in neither truth nor labels of 'a'"


def test_without_a_label_split_every_training_image_counts(dataset):
    result = _labels(dataset, "train", "all")
    assert (result["split_list"], result["images"]) == ("big", 3)
    # a, b, c together (ignore excluded): bg predicted right 5 times and for b's 3 dog pixels
    # -> bg 5/8, cat 3/3, dog 0/3.
    assert result["miou_ignore_excluded"] == pytest.approx((5 / 8 + 1 + 0) / 3)
    assert _labels(dataset, "train") == result, "no label split file: the manifest's training ids"


def test_validation_labels_are_scored_on_all_of_val(dataset):
    result = _labels(dataset, "val")
    assert (result["split"], result["split_list"], result["images"]) == ("val", "v_list", 1)
    assert result["miou_ignore_excluded"] == pytest.approx((2 / 3 + 1 / 2) / 2)


def test_cam_only_at_the_best_and_at_a_fixed_threshold_off_the_sweep(dataset):
    out = dataset / "cams.json"
    evaluate.cams(
        manifest_path=dataset / "manifest.json",
        cams_path=dataset / "cams.h5",
        thresholds=[0.875, 0.375],
        fixed_threshold=0.125,
        out_path=out,
        label_split_path=dataset / "label_split_small.json",
    )
    result = json.loads(out.read_text())
    assert (result["split_list"], result["images"]) == ("small", 1)
    # Image "a", max CAM [1/16, 3/4, 1/4, 1/2]: t=0.375 -> [0,1,0,1]: bg 1/3, cat 1/3;
    # t=0.875 -> all bg: bg 1/2, cat 0; fixed 0.125 -> [0,1,1,1]: bg 1/2, cat 2/3.
    assert result["miou"] == pytest.approx([1 / 3, 1 / 4])
    assert result["best_threshold"] == pytest.approx(0.375)
    assert result["best_miou"] == pytest.approx(1 / 3)
    assert result["fixed_threshold"] == pytest.approx(0.125)
    assert result["fixed_miou"] == pytest.approx(7 / 12)


def test_classifier_stage_ranks_the_models_own_scores_into_average_precision(tmp_path):
    """Image-level mAP of a real classifier over real JPEGs of two sizes: the stage's batched
    inference gives the scores a plain forward pass gives, ranked per class."""
    import torch

    from i2crc_core.data.datasets import normalize
    from i2crc_core.infra.fileio import write_image
    from i2crc_core.method.metrics import average_precision
    from i2crc_core.nets.checkpoints import save_model
    from i2crc_core.nets.models import build_classifier

    rng = np.random.default_rng(0)
    ids = [f"v{i}" for i in range(6)]
    labels = {"v0": [1], "v1": [2], "v2": [1, 2], "v3": [1], "v4": [2], "v5": [1]}
    images = {
        i: rng.integers(0, 256, (32 + 8 * (n % 2), 32, 3), dtype=np.uint8)
        for n, i in enumerate(ids)
    }
    for image_id, image in images.items():
        write_image(tmp_path / "JPEGImages" / f"{image_id}.jpg", image, quality=100)
    Manifest(
        root=str(tmp_path),
        image_dir="JPEGImages",
        mask_dir="SegmentationClass",
        split_dir="lists",
        num_classes=2,
        class_names=["cat", "dog"],
        ids={"train": ids, "val": ids},
        image_labels={"train": labels, "val": labels},
        splits={"train": "t", "val": "v"},
    ).save(tmp_path / "manifest.json")
    torch.manual_seed(0)
    model = build_classifier("small", 2).eval()
    save_model(tmp_path / "model.pt", model)
    evaluate_classifier.run(
        manifest_path=tmp_path / "manifest.json",
        model_path=tmp_path / "model.pt",
        split="val",
        out_path=tmp_path / "cls.json",
        device="cpu",
        precision="fp32",
        threads=1,
    )
    result = json.loads((tmp_path / "cls.json").read_text())

    from i2crc_core.infra.fileio import read_image

    with torch.no_grad():
        scores = np.stack(
            [
                model(normalize(read_image(tmp_path / "JPEGImages" / f"{i}.jpg"))[None])
                .mean(dim=(2, 3))[0]
                .numpy()
                for i in ids
            ]
        )
    targets = np.array([[1 in labels[i], 2 in labels[i]] for i in ids])
    assert (result["split"], result["split_list"], result["images"]) == ("val", "v", 6)
    assert result["class_names"] == ["cat", "dog"]
    np.testing.assert_allclose(result["ap"], average_precision(scores, targets), atol=1e-6)
    assert result["map"] == pytest.approx(np.mean(result["ap"]))
