"""The dataset manifest and the prepare_dataset stage that writes it."""

import json

import numpy as np
import pytest

from i2crc_core.data import synthetic
from i2crc_core.data.layout import (
    VOC_CLASSES,
    VocLayout,
    present_classes,
    read_image_labels,
    read_split,
    write_image_labels,
)
from i2crc_core.data.manifest import ROLES, LabelSplit, Manifest
from i2crc_core.infra.config import defaults
from i2crc_core.infra.errors import DatasetError
from i2crc_core.infra.fileio import read_image, read_label, write_image, write_label
from i2crc_core.stages import prepare_dataset
from tests.helpers.images import bomb_png, turned_jpeg

C = 5
LAYOUT = {
    "image_dir": "JPEGImages",
    "mask_dir": "SegmentationClass",
    "split_dir": "ImageSets/Segmentation",
}
SPLITS = {"train": "train", "val": "val"}
FRACTION = defaults()["dataset"]["synthetic"]["simple_fraction"]


def _manifest(root="/data/voc"):
    return Manifest(
        root=str(root),
        image_dir="imgs",
        mask_dir="gt",
        split_dir="lists",
        num_classes=3,
        class_names=["cat", "dög", "a b"],
        ids={"train": ["x", "a b é"], "val": ["v1"]},
        image_labels={"train": {"x": [1, 3], "a b é": [2]}, "val": {"v1": [3]}},
    )


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("prep") / "synthetic"
    synthetic.generate(
        root,
        seed=0,
        num_classes=C,
        num_train=12,
        num_val=4,
        image_size=48,
        simple_fraction=FRACTION,
    )
    return root


def _run(root, out, image_labels="masks", num_classes=C):
    manifest_path = out / "manifest.json"
    label_lists = {"train": out / "labels_train.txt", "val": out / "labels_val.txt"}
    prepare_dataset.run(
        root=str(root), layout=dict(LAYOUT), splits=dict(SPLITS), num_classes=num_classes,
        image_labels=image_labels if image_labels == "masks" else str(image_labels),
        manifest_path=str(manifest_path), label_lists={k: str(v) for k, v in label_lists.items()},
    )  # fmt: skip
    return manifest_path, label_lists


# ---------------------------------------------------------------- Manifest


def test_manifest_save_load_round_trip(tmp_path):
    manifest = _manifest(tmp_path)
    path = tmp_path / "out" / "manifest.json"
    manifest.save(path)
    loaded = Manifest.load(path)
    assert loaded == manifest
    assert loaded.labels("train") == {"x": (1, 3), "a b é": (2,)}
    assert loaded.labels("val") == {"v1": (3,)}
    assert json.loads(path.read_text(encoding="utf-8"))["ids"]["train"] == ["x", "a b é"]
    assert [p.name for p in path.parent.iterdir()] == ["manifest.json"]  # atomic: no temp left


def test_manifest_layout_uses_its_folders(tmp_path):
    layout = _manifest(tmp_path).layout()
    assert isinstance(layout, VocLayout)
    assert layout.image_path("q") == tmp_path / "imgs" / "q.jpg"
    assert layout.mask_path("q") == tmp_path / "gt" / "q.png"
    assert layout.split_path("train") == tmp_path / "lists" / "train.txt"
    with pytest.raises(DatasetError):
        _manifest(tmp_path / "absent").layout()


def test_manifest_load_missing_or_corrupt(tmp_path):
    with pytest.raises(DatasetError) as error:
        Manifest.load(tmp_path / "none.json")
    assert str(tmp_path / "none.json") in str(error.value)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(DatasetError, match="corrupt"):
        Manifest.load(tmp_path / "bad.json")
    (tmp_path / "keys.json").write_text(json.dumps({"root": "/x"}))
    with pytest.raises(DatasetError, match="corrupt"):
        Manifest.load(tmp_path / "keys.json")


# ---------------------------------------------------------------- prepare_dataset


def test_prepare_dataset_on_synthetic_root_with_labels_from_masks(tmp_path, synthetic_root):
    manifest_path, label_lists = _run(synthetic_root, tmp_path)
    manifest = Manifest.load(manifest_path)
    layout = VocLayout(synthetic_root)
    assert manifest.root == str(synthetic_root.resolve())
    assert manifest.num_classes == C
    assert manifest.class_names == synthetic.class_names(C)
    assert (manifest.image_dir, manifest.mask_dir, manifest.split_dir) == tuple(LAYOUT.values())
    for role in ROLES:
        ids = read_split(layout.split_path(SPLITS[role]))
        assert manifest.ids[role] == ids
        expected = {i: present_classes(read_label(layout.mask_path(i), C), C) for i in ids}
        assert manifest.labels(role) == expected
        assert all(expected.values())
        assert read_image_labels(label_lists[role], C) == expected
    assert len(manifest.ids["train"]) == 12 and len(manifest.ids["val"]) == 4
    assert manifest.layout().image_path(manifest.ids["val"][0]).is_file()


def test_prepare_dataset_with_a_label_list(tmp_path, synthetic_root):
    layout = VocLayout(synthetic_root)
    ids = read_split(layout.split_path("train")) + read_split(layout.split_path("val"))
    listed = {image_id: ((index % C) + 1,) for index, image_id in enumerate(ids)}
    listed["extra_not_in_any_split"] = (1,)
    write_image_labels(tmp_path / "train_cls.txt", listed)
    manifest_path, label_lists = _run(synthetic_root, tmp_path / "out", tmp_path / "train_cls.txt")
    manifest = Manifest.load(manifest_path)
    for role in ROLES:
        assert manifest.labels(role) == {i: listed[i] for i in manifest.ids[role]}
        assert read_image_labels(label_lists[role], C) == manifest.labels(role)


def test_prepare_dataset_label_list_missing_an_id(tmp_path, synthetic_root):
    write_image_labels(tmp_path / "cls.txt", {"syn_train_000000": (1,)})
    with pytest.raises(DatasetError) as error:
        _run(synthetic_root, tmp_path / "out", tmp_path / "cls.txt")
    assert "syn_train_000001" in str(error.value)
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_prepare_dataset_missing_root(tmp_path):
    with pytest.raises(DatasetError) as error:
        _run(tmp_path / "nowhere", tmp_path)
    assert str(tmp_path / "nowhere") in str(error.value)


def test_prepare_dataset_rejects_a_broken_dataset(tmp_path):
    root = tmp_path / "root"
    synthetic.generate(
        root, seed=1, num_classes=C, num_train=3, num_val=2, image_size=32, simple_fraction=FRACTION
    )
    write_label(root / "SegmentationClass" / "syn_val_000001.png", np.zeros((32, 31), np.uint8))
    with pytest.raises(DatasetError, match="31x32"):
        _run(root, tmp_path / "out")
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_prepare_dataset_warns_of_images_with_an_exif_orientation(tmp_path, caplog):
    root = tmp_path / "root"
    synthetic.generate(
        root, seed=1, num_classes=C, num_train=3, num_val=2, image_size=32, simple_fraction=FRACTION
    )
    for name in ("syn_train_000001", "syn_val_000000"):
        image = root / "JPEGImages" / f"{name}.jpg"
        turned_jpeg(image, read_image(image))
    with caplog.at_level("WARNING"):
        _run(root, tmp_path / "out")
    assert caplog.messages == [
        "2 of 5 images carry an EXIF orientation (first: 'syn_train_000001'): the pipeline uses "
        "their stored pixels, on which the masks are drawn, while a viewer shows them turned or "
        "mirrored"
    ]
    assert (tmp_path / "out" / "manifest.json").exists()


def test_prepare_dataset_refuses_a_decompression_bomb_in_one_line(tmp_path):
    root = tmp_path / "root"
    synthetic.generate(
        root, seed=1, num_classes=C, num_train=3, num_val=2, image_size=32, simple_fraction=FRACTION
    )
    bomb = bomb_png(root / "JPEGImages" / "syn_train_000002.jpg")
    with pytest.raises(DatasetError) as error:
        _run(root, tmp_path / "out")
    assert str(error.value) == (
        f"{bomb}: image file of 900 megapixels is larger than the limit of 179 megapixels "
        "(Pillow's guard against decompression bombs)"
    )
    assert not (tmp_path / "out").exists()


def test_prepare_dataset_refuses_evaluation_ids_that_are_training_images(tmp_path):
    root = tmp_path / "root"
    synthetic.generate(
        root, seed=1, num_classes=C, num_train=3, num_val=2, image_size=32, simple_fraction=FRACTION
    )
    val_list = root / LAYOUT["split_dir"] / "val.txt"
    val_list.write_text(val_list.read_text() + "syn_train_000002\nsyn_train_000000\n")
    with pytest.raises(DatasetError) as error:
        _run(root, tmp_path / "out")
    assert str(error.value) == (
        f"{val_list}: 2 of the 4 evaluation ids are also training images of split 'train' "
        "(first: 'syn_train_000002'); scores on them would measure what the models were "
        "trained on"
    )
    assert not (tmp_path / "out").exists(), "nothing written"


def test_prepare_dataset_class_names(tmp_path):
    root = tmp_path / "root"
    synthetic.generate(
        root, seed=1, num_classes=C, num_train=2, num_val=2, image_size=32, simple_fraction=FRACTION
    )
    (root / "class_names.txt").write_text("only\ntwo\n")
    with pytest.raises(DatasetError, match="lists 2 classes"):
        _run(root, tmp_path / "out")
    (root / "class_names.txt").unlink()
    assert prepare_dataset.class_names(root, C) == [f"class{i}" for i in range(1, C + 1)]
    assert prepare_dataset.class_names(root, 20) == list(VOC_CLASSES)


def test_prepare_dataset_hand_built_voc_root_with_odd_ids(tmp_path):
    root = tmp_path / "voc"
    ids = {"train": ["a b é", "plain"], "val": ["ünï"]}
    for index, image_id in enumerate(ids["train"] + ids["val"]):
        write_image(
            root / "JPEGImages" / f"{image_id}.jpg", np.full((8, 10, 3), 50 * index, np.uint8)
        )
        mask = np.zeros((8, 10), np.uint8)
        mask[2:5, 2:6] = index + 1
        mask[0, 0] = 255
        write_label(root / "SegmentationClass" / f"{image_id}.png", mask)
    for role, role_ids in ids.items():
        path = root / "ImageSets" / "Segmentation" / f"{role}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(role_ids) + "\n", encoding="utf-8")
    manifest_path, _ = _run(root, tmp_path / "out", num_classes=3)
    manifest = Manifest.load(manifest_path)
    assert manifest.ids == ids
    assert manifest.labels("train") == {"a b é": (1,), "plain": (2,)}
    assert manifest.labels("val") == {"ünï": (3,)}


# ---------------------------------------------------------------- label_split


def test_manifest_records_the_split_list_of_each_role(tmp_path, synthetic_root):
    manifest = Manifest.load(_run(synthetic_root, tmp_path)[0])
    assert manifest.splits == SPLITS
    assert manifest.split_name("train") == "train"
    assert _manifest(tmp_path).split_name("val") == "val", "hand-made manifests name the role"


def test_label_split_is_a_subset_of_the_training_images_in_list_order(tmp_path, synthetic_root):
    manifest_path, _ = _run(synthetic_root, tmp_path)
    train = Manifest.load(manifest_path).ids["train"]
    (synthetic_root / LAYOUT["split_dir"] / "few.txt").write_text(f"{train[5]}\n{train[1]}\n")
    prepare_dataset.label_split(
        manifest_path=manifest_path, split="few", out_path=tmp_path / "few.json"
    )
    assert LabelSplit.load(tmp_path / "few.json") == LabelSplit("few", [train[5], train[1]])
    prepare_dataset.label_split(
        manifest_path=manifest_path, split=None, out_path=tmp_path / "all.json"
    )
    assert LabelSplit.load(tmp_path / "all.json") == LabelSplit("train", train)


def test_label_split_outside_the_training_images_is_a_one_line_error(tmp_path, synthetic_root):
    manifest_path, _ = _run(synthetic_root, tmp_path)
    manifest = Manifest.load(manifest_path)
    listed = synthetic_root / LAYOUT["split_dir"] / "mixed.txt"
    listed.write_text(f"{manifest.ids['train'][0]}\n{manifest.ids['val'][2]}\n")
    with pytest.raises(DatasetError) as error:
        prepare_dataset.label_split(
            manifest_path=manifest_path, split="mixed", out_path=tmp_path / "mixed.json"
        )
    message = str(error.value)
    assert message.startswith(
        f"{listed}: evaluation.label_split 'mixed' lists 1 of 2 ids outside "
        "the training images of split 'train'"
    )
    assert repr(manifest.ids["val"][2]) in message and "\n" not in message
    assert not (tmp_path / "mixed.json").exists()
    with pytest.raises(DatasetError, match="absent.txt"):
        prepare_dataset.label_split(
            manifest_path=manifest_path, split="absent", out_path=tmp_path / "absent.json"
        )
    with pytest.raises(DatasetError, match="label split is missing"):
        LabelSplit.load(tmp_path / "absent.json")
