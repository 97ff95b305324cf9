"""VOC-layout datasets: split and label lists, validation, and the torch datasets."""

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import default_collate
from torchvision.transforms import v2

from i2crc_core.data.datasets import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ClassificationDataset,
    ImageDataset,
    SegmentationDataset,
    normalize,
)
from i2crc_core.data.layout import (
    VocLayout,
    image_labels_from_masks,
    present_classes,
    read_image_labels,
    read_split,
    write_image_labels,
)
from i2crc_core.data.saliency import load_saliency
from i2crc_core.infra.errors import DatasetError, SaliencyError
from i2crc_core.infra.fileio import (
    IGNORE,
    read_image,
    read_label,
    write_gray,
    write_image,
    write_label,
)
from i2crc_core.nets.sampling import SeededSamples

C = 5
ODD_ID = "a b é"
CPU = torch.device("cpu")


def _finished(dataset, samples):
    """Samples of a training dataset collated and finished on the CPU, as training sees them."""
    return dataset.finish(default_collate(list(samples)), CPU)


def _image(height, width, seed):
    rng = np.random.default_rng(seed)
    base = rng.integers(30, 220, size=3)
    image = np.empty((height, width, 3), np.uint8)
    image[:] = base
    image[: height // 2, : width // 2] = 255 - base  # a block, so flips are visible
    return image


def _mask(height, width, classes):
    mask = np.zeros((height, width), np.uint8)
    for index, class_id in enumerate(classes):
        mask[1 + 2 * index : 3 + 2 * index, 1 : width // 2] = class_id
    mask[-1, -1] = IGNORE
    return mask


def make_root(root: Path, samples: dict, split="train", size=(20, 30)):
    """Write a VOC-layout root: samples maps id -> tuple of 1-based classes in its mask."""
    height, width = size
    for index, (image_id, classes) in enumerate(samples.items()):
        write_image(root / "JPEGImages" / f"{image_id}.jpg", _image(height, width, index))
        write_label(root / "SegmentationClass" / f"{image_id}.png", _mask(height, width, classes))
    split_file = root / "ImageSets" / "Segmentation" / f"{split}.txt"
    split_file.parent.mkdir(parents=True, exist_ok=True)
    split_file.write_text("".join(f"{i}\n" for i in samples), encoding="utf-8")
    return VocLayout(root)


SAMPLES = {"img_0": (1,), "img_1": (2, 4), ODD_ID: (3,), "img_3": (5, 1)}


@pytest.fixture
def layout(tmp_path):
    return make_root(tmp_path / "voc", SAMPLES)


# ---------------------------------------------------------------- split lists


def test_read_split_keeps_order_and_skips_blank_lines(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text("b\n\n  a  \nc\n   \n", encoding="utf-8")
    assert read_split(path) == ["b", "a", "c"]


def test_read_split_duplicate_id_names_id_and_both_lines(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text("x\ny\n\nx\n", encoding="utf-8")
    with pytest.raises(DatasetError) as error:
        read_split(path)
    message = str(error.value)
    assert str(path) in message
    assert "'x'" in message
    assert "lines 1 and 4" in message


@pytest.mark.parametrize("content", ["", "\n\n", "   \n\t\n"])
def test_read_split_empty_is_error(tmp_path, content):
    path = tmp_path / "val.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DatasetError, match="empty"):
        read_split(path)


def test_read_split_missing_and_non_utf8(tmp_path):
    with pytest.raises(DatasetError) as error:
        read_split(tmp_path / "absent.txt")
    assert str(tmp_path / "absent.txt") in str(error.value)
    (tmp_path / "latin.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(DatasetError, match="UTF-8"):
        read_split(tmp_path / "latin.txt")


ESCAPING_IDS = [
    "/some/where/evil",
    "../../../../some/where/evil",
    "a/../../y",
    "a\\..\\y",
    "..",
    "x\0y",
]


@pytest.mark.parametrize("bad", ESCAPING_IDS)
def test_an_id_that_names_a_file_outside_its_folder_is_refused_naming_file_and_line(tmp_path, bad):
    path = tmp_path / "train.txt"
    path.write_text(f"a\n\n{bad}\nb\n", encoding="utf-8")
    with pytest.raises(DatasetError) as error:
        read_split(path)
    assert str(error.value).startswith(f"{path}, line 3: image id {bad!r} ")
    listing = tmp_path / "cls.txt"
    listing.write_text(f"a 0\n{bad}\t1\n", encoding="utf-8")
    with pytest.raises(DatasetError) as error:
        read_image_labels(listing, C)
    assert str(error.value).startswith(f"{listing}, line 2: image id {bad!r} ")


def test_ids_with_spaces_and_non_ascii_work_end_to_end(tmp_path, layout):
    ids = read_split(layout.split_path("train"))
    assert ids == list(SAMPLES)
    assert ODD_ID in ids
    assert layout.image_path(ODD_ID).name == f"{ODD_ID}.jpg"
    assert layout.image_path(ODD_ID).is_file()
    layout.validate(ids, C)
    assert layout.image_size(ODD_ID) == (20, 30)
    labels = image_labels_from_masks(layout, ids, C)
    assert labels[ODD_ID] == (3,)
    lists = tmp_path / "labels.txt"
    write_image_labels(lists, labels)
    assert read_image_labels(lists, C) == labels
    saliency_dir = tmp_path / "sal"
    for image_id in ids:
        write_gray(saliency_dir / f"{image_id}.png", np.full((20, 30), 128, np.uint8))
    dataset = ClassificationDataset(layout, ids, labels, C, saliency_dir, 16, train=False)
    sample = dataset[ids.index(ODD_ID)]
    assert sample["id"] == ODD_ID
    assert sample["label"].tolist() == [0.0, 0.0, 1.0, 0.0, 0.0]
    image_sample = ImageDataset(layout, ids)[ids.index(ODD_ID)]
    assert image_sample["id"] == ODD_ID and image_sample["size"] == (20, 30)


# ---------------------------------------------------------------- image-level label lists


def test_read_image_labels_converts_to_one_based_sorted_unique(tmp_path):
    path = tmp_path / "cls.txt"
    path.write_text("img1 0 2\n\nimg2 4\nimg3 3 1 3\n", encoding="utf-8")
    assert read_image_labels(path, C) == {"img1": (1, 3), "img2": (5,), "img3": (2, 4)}


def test_read_image_labels_tab_separated_id_with_spaces(tmp_path):
    path = tmp_path / "cls.txt"
    path.write_text(f"{ODD_ID}\t0 4\nplain 1\n", encoding="utf-8")
    assert read_image_labels(path, C) == {ODD_ID: (1, 5), "plain": (2,)}


@pytest.mark.parametrize(
    "content, fragment",
    [
        ("ok 0\nbad 5\n", "line 2: class index 5 is outside 0..4"),
        ("bad -1\n", "line 1: class index -1"),
        ("ok 1\nbad one two\n", "line 2: class indices must be integers"),
        ("ok 1\nbad 1.5\n", "line 2: class indices must be integers"),
        ("lonely\n", "line 1: image 'lonely' has no object class"),
        ("x 0\nx 1\n", "duplicate id 'x' on lines 1 and 2"),
        ("\n\n", "empty"),
    ],
)
def test_read_image_labels_errors(tmp_path, content, fragment):
    path = tmp_path / "cls.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DatasetError) as error:
        read_image_labels(path, C)
    assert fragment in str(error.value)
    assert str(path) in str(error.value)


def test_read_image_labels_missing_file(tmp_path):
    with pytest.raises(DatasetError, match="missing"):
        read_image_labels(tmp_path / "none.txt", C)


def test_write_read_image_labels_round_trip(tmp_path):
    labels = {"a": (1,), ODD_ID: (2, 5), "ünïcode": (3, 4, 5), "z z z": (1, 2)}
    path = tmp_path / "out" / "labels.txt"
    write_image_labels(path, labels)
    text = path.read_text(encoding="utf-8")
    assert "a 0\n" in text  # 0-based on disk
    assert f"{ODD_ID}\t1 4\n" in text
    assert read_image_labels(path, C) == labels
    assert [p.name for p in path.parent.iterdir()] == ["labels.txt"]


def test_write_image_labels_rejects_tab_in_id(tmp_path):
    with pytest.raises(DatasetError, match="tab or newline"):
        write_image_labels(tmp_path / "l.txt", {"a\tb": (1,)})
    assert not (tmp_path / "l.txt").exists()


# ---------------------------------------------------------------- layout and validation


def test_voc_layout_missing_root_names_it(tmp_path):
    with pytest.raises(DatasetError) as error:
        VocLayout(tmp_path / "no_such_root")
    assert str(tmp_path / "no_such_root") in str(error.value)
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(DatasetError):
        VocLayout(tmp_path / "a_file")


def test_voc_layout_paths_and_custom_dirs(tmp_path):
    layout = VocLayout(tmp_path, image_dir="imgs", mask_dir="gt", split_dir="lists")
    assert layout.image_path("q") == tmp_path / "imgs" / "q.jpg"
    assert layout.mask_path("q") == tmp_path / "gt" / "q.png"
    assert layout.split_path("val") == tmp_path / "lists" / "val.txt"


def test_validate_accepts_a_good_dataset(layout):
    layout.validate(list(SAMPLES), C)


def test_validate_missing_image(layout):
    layout.image_path("img_1").unlink()
    with pytest.raises(DatasetError) as error:
        layout.validate(list(SAMPLES), C)
    message = str(error.value)
    assert str(layout.image_path("img_1")) in message
    assert "'img_1'" in message
    assert "missing" in message


def test_validate_missing_mask(layout):
    layout.mask_path(ODD_ID).unlink()
    with pytest.raises(DatasetError) as error:
        layout.validate(list(SAMPLES), C)
    assert str(layout.mask_path(ODD_ID)) in str(error.value)
    assert "missing" in str(error.value)


def test_validate_size_mismatch_names_both_sizes_and_file(layout):
    write_label(layout.mask_path("img_3"), np.zeros((21, 30), np.uint8))
    with pytest.raises(DatasetError) as error:
        layout.validate(list(SAMPLES), C)
    message = str(error.value)
    assert str(layout.mask_path("img_3")) in message
    assert "30x21" in message  # label W x H
    assert "30x20" in message  # image W x H


def test_validate_invalid_mask_values_and_corrupt_image(layout):
    write_label(layout.mask_path("img_0"), np.full((20, 30), 9, np.uint8))
    with pytest.raises(DatasetError, match=r"\[9\]"):
        layout.validate(["img_0"], C)
    layout.image_path("img_1").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match="corrupt"):
        layout.validate(["img_1"], C)


# ---------------------------------------------------------------- labels from masks


def test_present_classes_leaves_out_background_and_ignore():
    mask = np.array([[0, 3, 3], [255, 1, 0]], np.uint8)
    assert present_classes(mask, C) == (1, 3)
    assert present_classes(np.zeros((2, 2), np.uint8), C) == ()


def test_image_labels_from_masks(layout):
    labels = image_labels_from_masks(layout, list(SAMPLES), C)
    assert labels == {image_id: tuple(sorted(c)) for image_id, c in SAMPLES.items()}
    # Also from a root path and another mask folder.
    other = layout.root / "Other"
    write_label(other / "img_0.png", _mask(20, 30, (4,)))
    assert image_labels_from_masks(layout.root, ["img_0"], C, mask_dir="Other") == {"img_0": (4,)}
    assert image_labels_from_masks(layout, ["img_0"], C, mask_dir="Other") == {"img_0": (4,)}


@pytest.mark.parametrize("fill", [0, IGNORE])
def test_image_labels_from_mask_without_object_is_error(layout, fill):
    mask = np.full((20, 30), fill, np.uint8)
    mask[0, 0] = 0
    write_label(layout.mask_path("img_1"), mask)
    with pytest.raises(DatasetError) as error:
        image_labels_from_masks(layout, list(SAMPLES), C)
    assert "'img_1'" in str(error.value)
    assert "no object class" in str(error.value)
    assert str(layout.mask_path("img_1")) in str(error.value)


# ---------------------------------------------------------------- normalisation


def test_normalize_array_and_tensor_agree():
    image = np.zeros((2, 3, 3), np.uint8)
    image[0, 0] = [round(m * 255) for m in IMAGENET_MEAN]
    image[1, 2] = 255
    from_array = normalize(image)
    from_tensor = normalize(torch.from_numpy(image).permute(2, 0, 1))
    assert from_array.shape == (3, 2, 3) and from_array.dtype == torch.float32
    torch.testing.assert_close(from_array, from_tensor)
    assert from_array[:, 0, 0].abs().max() < 0.01  # the mean colour is ~0
    expected = torch.tensor([(1 - m) / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)])
    torch.testing.assert_close(from_array[:, 1, 2], expected)


# ---------------------------------------------------------------- ClassificationDataset


def _saliency_dir(tmp_path, layout, ids, shape=(20, 30)):
    directory = tmp_path / "saliency"
    for image_id in ids:
        saliency = np.zeros(shape, np.uint8)
        saliency[:, : shape[1] // 3] = 255  # left third salient, so a flip is visible
        write_gray(directory / f"{image_id}.png", saliency)
    return directory


def _cls_dataset(tmp_path, layout, train, **kwargs):
    ids = list(SAMPLES)
    labels = image_labels_from_masks(layout, ids, C)
    return ClassificationDataset(
        layout, ids, labels, C, _saliency_dir(tmp_path, layout, ids), 16, train=train, **kwargs
    )


def test_classification_sample_shapes_and_dtypes(tmp_path, layout):
    dataset = _cls_dataset(tmp_path, layout, train=False)
    assert len(dataset) == len(SAMPLES)
    sample = dataset[1]
    assert sample["id"] == "img_1"
    assert sample["image"].shape == (3, 16, 16) and sample["image"].dtype == torch.uint8
    assert sample["label"].shape == (C,) and sample["label"].dtype == torch.float32
    assert sample["label"].tolist() == [0.0, 1.0, 0.0, 1.0, 0.0]
    assert sample["saliency"].shape == (1, 16, 16) and sample["saliency"].dtype == torch.float32
    assert 0.0 <= float(sample["saliency"].min()) and float(sample["saliency"].max()) <= 1.0
    # Without train: no flip, no jitter; the salient third stays on the left.
    assert not sample["flip"] and sample["jitter_factors"].isnan().all()
    assert sample["saliency"][0, :, 0].min() == 1.0
    assert sample["saliency"][0, :, -1].max() == 0.0
    # Eval samples are identical on every access.
    torch.testing.assert_close(dataset[1]["image"], sample["image"])
    batch = _finished(dataset, [sample, dataset[2]])
    assert set(batch) == {"image", "label", "saliency"}
    assert batch["image"].shape == (2, 3, 16, 16) and batch["image"].dtype == torch.float32
    torch.testing.assert_close(batch["image"][0], normalize(sample["image"]), rtol=0, atol=0)
    assert torch.equal(batch["saliency"][0], sample["saliency"])


def test_classification_saliency_of_another_size_is_resized(tmp_path, layout):
    dataset = _cls_dataset(tmp_path, layout, train=False)
    small = np.zeros((7, 11), np.uint8)
    small[:, :4] = 255
    write_gray(dataset.saliency_dir / "img_0.png", small)
    big = np.zeros((50, 90), np.uint8)
    big[:, :30] = 255
    write_gray(dataset.saliency_dir / "img_1.png", big)
    for index in (0, 1):
        saliency = dataset[index]["saliency"]
        assert saliency.shape == (1, 16, 16)
        assert float(saliency[0, :, 0].min()) > 0.9
        assert float(saliency[0, :, -1].max()) < 0.1


def test_classification_all_zero_saliency_is_accepted(tmp_path, layout):
    dataset = _cls_dataset(tmp_path, layout, train=True)
    write_gray(dataset.saliency_dir / "img_3.png", np.zeros((20, 30), np.uint8))
    sample = dataset[3]
    assert sample["saliency"].shape == (1, 16, 16)
    assert float(sample["saliency"].abs().max()) == 0.0


def test_classification_missing_saliency_or_label(tmp_path, layout):
    dataset = _cls_dataset(tmp_path, layout, train=False)
    (dataset.saliency_dir / "img_0.png").unlink()
    with pytest.raises(SaliencyError) as error:
        dataset[0]
    assert str(dataset.saliency_dir / "img_0.png") in str(error.value)
    with pytest.raises(DatasetError, match="img_9"):
        ClassificationDataset(layout, ["img_0", "img_9"], {"img_0": (1,)}, C, tmp_path, 16, False)


def test_classification_without_saliency_draws_the_same_images(tmp_path, layout):
    ids = list(SAMPLES)
    labels = image_labels_from_masks(layout, ids, C)
    without = ClassificationDataset(layout, ids, labels, C, None, 16, train=True)
    with_saliency = _cls_dataset(tmp_path, layout, train=True)
    for index in range(len(ids)):
        torch.manual_seed(index)
        sample = without[index]
        torch.manual_seed(index)
        reference = with_saliency[index]
        assert "saliency" not in sample
        finished = _finished(without, [sample])
        assert "saliency" not in finished
        assert torch.equal(finished["image"], _finished(with_saliency, [reference])["image"])
        assert torch.equal(sample["label"], reference["label"])


def _stack(dataset, key):
    return _finished(dataset, [dataset[i] for i in range(len(dataset))])[key]


def test_classification_augmentation_is_deterministic_under_manual_seed(tmp_path, layout):
    dataset = _cls_dataset(tmp_path, layout, train=True)
    torch.manual_seed(123)
    first_images, first_saliency = _stack(dataset, "image"), _stack(dataset, "saliency")
    torch.manual_seed(123)
    second_images, second_saliency = _stack(dataset, "image"), _stack(dataset, "saliency")
    torch.testing.assert_close(first_images, second_images, rtol=0, atol=0)
    torch.testing.assert_close(first_saliency, second_saliency, rtol=0, atol=0)
    torch.manual_seed(124)
    assert not torch.equal(_stack(dataset, "image"), first_images)
    # Augmentation changes the image (jitter), not the labels.
    plain = _cls_dataset(tmp_path, layout, train=False)
    assert not torch.equal(first_images, _stack(plain, "image"))
    torch.testing.assert_close(_stack(dataset, "label"), _stack(plain, "label"))


def test_classification_flip_hits_image_and_saliency_together(tmp_path, layout):
    augmented = _cls_dataset(tmp_path, layout, train=True, color_jitter=(0, 0, 0, 0))
    plain = _cls_dataset(tmp_path, layout, train=False)
    reference = plain[2]
    outcomes = set()
    reference_image = _finished(plain, [reference])["image"][0]
    for seed in range(12):
        torch.manual_seed(seed)
        sample = augmented[2]
        image = _finished(augmented, [sample])["image"][0]
        flipped = torch.equal(sample["saliency"], reference["saliency"].flip(-1))
        if flipped:
            torch.testing.assert_close(image, reference_image.flip(-1))
        else:
            torch.testing.assert_close(sample["saliency"], reference["saliency"])
            torch.testing.assert_close(image, reference_image)
        assert bool(sample["flip"]) == flipped
        outcomes.add(flipped)
    assert outcomes == {True, False}


# ---------------------------------------------------------------- SegmentationDataset


def _seg_root(tmp_path, size=(20, 30), seed=0):
    """A root with random block labels (values 0, 1, 3, 255) in a separate label folder."""
    rng = np.random.default_rng(seed)
    ids = ["s0", "s1", ODD_ID]
    layout = make_root(tmp_path / "seg", {i: (1,) for i in ids}, size=size)
    label_dir = tmp_path / "pseudo"
    labels = {}
    for image_id in ids:
        coarse = np.array([0, 1, 3, IGNORE], np.uint8)[rng.integers(4, size=(4, 6))]
        label = np.kron(coarse, np.ones((size[0] // 4 + 1, size[1] // 6 + 1), np.uint8))
        label = label[: size[0], : size[1]]
        write_label(label_dir / f"{image_id}.png", label)
        labels[image_id] = label
    return layout, ids, label_dir, labels


def test_segmentation_eval_pads_with_ignore_and_zero(tmp_path):
    layout, ids, label_dir, labels = _seg_root(tmp_path, size=(20, 30))
    dataset = SegmentationDataset(layout, ids, label_dir, C, crop_size=40, train=False)
    assert len(dataset) == 3
    sample = dataset[0]
    assert sample["image"].shape == (3, 40, 40) and sample["image"].dtype == torch.uint8
    assert sample["label"].shape == (40, 40) and sample["label"].dtype == torch.uint8
    assert sample["content"].tolist() == [0, 20, 0, 30]
    batch = _finished(dataset, [sample])
    image, label = batch["image"][0], batch["label"][0]
    assert image.shape == (3, 40, 40) and image.dtype == torch.float32
    assert label.shape == (40, 40) and label.dtype == torch.int64
    label = label.numpy()
    np.testing.assert_array_equal(label[:20, :30], labels["s0"])
    assert (label[20:, :] == IGNORE).all() and (label[:, 30:] == IGNORE).all()
    assert float(image[:, 20:, :].abs().max()) == 0.0
    assert float(image[:, :, 30:].abs().max()) == 0.0
    torch.testing.assert_close(image[:, :20, :30], normalize(read_image(layout.image_path("s0"))))


def test_segmentation_eval_centre_crops_larger_images(tmp_path):
    layout, ids, label_dir, labels = _seg_root(tmp_path, size=(50, 60))
    dataset = SegmentationDataset(layout, ids, label_dir, C, crop_size=32, train=False)
    sample = dataset[2]
    assert sample["id"] == ODD_ID
    np.testing.assert_array_equal(sample["label"].numpy(), labels[ODD_ID][9:41, 14:46])


@pytest.mark.parametrize("size", [(20, 30), (50, 60)])
def test_segmentation_train_shapes_values_and_determinism(tmp_path, size):
    layout, ids, label_dir, labels = _seg_root(tmp_path, size=size)
    dataset = SegmentationDataset(
        layout, ids, label_dir, C, crop_size=24, scale_range=(0.5, 1.5), flip=True, train=True
    )
    for seed in range(6):
        torch.manual_seed(seed)
        samples = [dataset[i] for i in range(len(dataset))]
        for sample in samples:
            assert sample["image"].shape == (3, 24, 24)
            assert sample["label"].shape == (24, 24) and sample["label"].dtype == torch.uint8
            # Nearest resize invents no values; padding only adds ignore.
            values = set(np.unique(sample["label"].numpy()).tolist())
            assert values <= set(np.unique(labels[sample["id"]]).tolist()) | {IGNORE}
        torch.manual_seed(seed)
        again = [dataset[i] for i in range(len(dataset))]
        for first, second in zip(samples, again):
            assert torch.equal(first["image"], second["image"])
            assert torch.equal(first["label"], second["label"])


def test_segmentation_train_scale_changes_content(tmp_path):
    layout, ids, label_dir, _ = _seg_root(tmp_path, size=(50, 60))
    dataset = SegmentationDataset(layout, ids, label_dir, C, crop_size=24, train=True)
    seen = set()
    for seed in range(8):
        torch.manual_seed(seed)
        seen.add(dataset[0]["label"].numpy().tobytes())
    assert len(seen) > 1


@pytest.mark.parametrize(
    ("scale_range", "heights"),
    [((0.5, 1.5), {10, 15, 20, 25, 30}), ((0.5, 1.4), {10, 15, 20, 25})],
)
def test_segmentation_scale_step_draws_uniformly_from_the_grid(tmp_path, scale_range, heights):
    """scale_step 0.25: the ref code's random.choice of 0.5, 0.75, ..., 1.5 (configs/voc12.yaml
    SCALES, libs/datasets/base.py:65), up to the range's end where the steps do not reach it.
    A 20-pixel-high image in a 64 crop keeps its whole rescaled height as content."""
    layout, ids, label_dir, _ = _seg_root(tmp_path, size=(20, 40))

    def drawn(scale_step, seeds):
        dataset = SegmentationDataset(
            layout,
            ids,
            label_dir,
            C,
            crop_size=64,
            scale_range=scale_range,
            scale_step=scale_step,
            flip=False,
        )
        found = []
        for seed in seeds:
            torch.manual_seed(seed)  # the dataset draws from torch's global RNG
            found.append(int(dataset[0]["content"][1]))
        return found

    grid = drawn(0.25, range(300))
    counts = {height: grid.count(height) for height in heights}
    assert set(grid) == heights and min(counts.values()) > 300 / len(heights) / 2, counts
    assert grid[:20] == drawn(0.25, range(20)), "the same seeds draw the same scales"
    assert len(set(drawn(None, range(40))) - heights) > 5, "uniform in the range without a step"


def test_segmentation_label_size_mismatch(tmp_path):
    layout, ids, label_dir, _ = _seg_root(tmp_path)
    write_label(label_dir / "s1.png", np.zeros((10, 10), np.uint8))
    dataset = SegmentationDataset(layout, ids, label_dir, C, crop_size=16, train=False)
    with pytest.raises(DatasetError) as error:
        dataset[1]
    assert str(label_dir / "s1.png") in str(error.value)
    assert "10x10" in str(error.value) and "30x20" in str(error.value)


# ---------------------------------------------------------------- ImageDataset


def test_image_dataset_keeps_original_size(tmp_path):
    layout = make_root(tmp_path / "r", {"p": (1,), "q": (2,)}, size=(13, 17))
    dataset = ImageDataset(layout, ["q", "p"])
    assert len(dataset) == 2
    sample = dataset[0]
    assert sample["id"] == "q"
    assert sample["size"] == (13, 17)
    assert sample["image"].shape == (3, 13, 17)
    torch.testing.assert_close(sample["image"], normalize(read_image(layout.image_path("q"))))
    layout.image_path("p").unlink()
    with pytest.raises(DatasetError, match="missing"):
        dataset[1]


# ---------------------------------------------------------------- decoded cache


def test_decoded_cache_decodes_each_file_once_within_its_budget(tmp_path):
    from i2crc_core.data.datasets import DecodedCache

    loads = []

    def load(path, size):
        loads.append(path)
        return np.zeros(size, np.uint8)

    cache = DecodedCache(max_bytes=150)
    first = cache(load, tmp_path / "a", (10, 10))
    assert cache(load, tmp_path / "a", (10, 10)) is first and len(loads) == 1
    cache(load, tmp_path / "b", (10, 10))  # 200 bytes would not fit: decoded every time
    cache(load, tmp_path / "b", (10, 10))
    assert len(loads) == 3
    cache(load, tmp_path / "a", (5, 10))  # another call of the same file is another array
    assert len(loads) == 4


@pytest.mark.parametrize("kind", ["segmentation", "classification"])
def test_cached_epochs_give_the_samples_of_uncached_ones(layout, tmp_path, kind):
    """The cache changes only how often files are decoded: two epochs of seeded samples with
    it equal those decoded every time, bit for bit (no augmentation writes into a cached array)."""
    from i2crc_core.data.datasets import DecodedCache
    from i2crc_core.nets.sampling import SeededSamples

    if kind == "segmentation":
        label_dir = layout.mask_dir

        def build():
            return SegmentationDataset(layout, list(SAMPLES), label_dir, C, crop_size=16)
    else:
        saliency_dir = tmp_path / "saliency"
        for index, image_id in enumerate(SAMPLES):
            write_gray(saliency_dir / f"{image_id}.png", np.full((20, 30), 40 * index, np.uint8))
        labels = {image_id: classes for image_id, classes in SAMPLES.items()}

        def build():
            return ClassificationDataset(
                layout, list(SAMPLES), labels, C, saliency_dir, input_size=20, train=True
            )

    cached, uncached = build(), build()
    uncached.decoded = DecodedCache(max_bytes=0)
    keys = [(index, 100 * epoch + index) for epoch in range(2) for index in range(len(SAMPLES))]
    for key in keys:
        a, b = SeededSamples(cached)[key], SeededSamples(uncached)[key]
        for name in a:
            if name != "id":
                assert torch.equal(a[name], b[name]), (key, name)
    assert len(cached.decoded._arrays) == 2 * len(SAMPLES), "the image and its label or map"


# ---------------------------------------------------------------- finishing on the device
# The datasets used to do the float work in __getitem__: jitter the uint8 image with
# v2.ColorJitter, flip, normalise (classifier); normalise the scaled image, pad it with zero,
# crop, flip (segmentation). The multi-seed results were trained on those batches; the
# references below recompute them with the same ops, so a CPU run still trains on them bit for
# bit when the uint8 samples are finished on the device.


def _reference_normalize(image_chw):
    mean, std = torch.tensor(IMAGENET_MEAN).view(3, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return (image_chw.float() / 255.0 - mean) / std


def _noise_root(tmp_path, sizes):
    """JPEGs of noise (every jitter op changes them, contrast by a non-trivial mean), with
    label maps and saliency maps."""
    rng = np.random.default_rng(7)
    ids = [f"n{index}" for index in range(len(sizes))]
    layout = make_root(tmp_path / "noise", {image_id: (1,) for image_id in ids})
    for image_id, (height, width) in zip(ids, sizes):
        write_image(layout.image_path(image_id), rng.integers(0, 256, (height, width, 3), np.uint8))
        write_label(
            tmp_path / "labels" / f"{image_id}.png",
            rng.choice(np.array([0, 2, IGNORE], np.uint8), (height, width)),
        )
        write_gray(
            tmp_path / "saliency" / f"{image_id}.png",
            rng.integers(0, 256, (height, width), np.uint8),
        )
    return layout, ids


def _reference_classification(layout, saliency_dir, image_id, size, color_jitter):
    image = read_image(layout.image_path(image_id))
    saliency = load_saliency(saliency_dir / f"{image_id}.png", image.shape[:2])
    image = torch.from_numpy(np.array(Image.fromarray(image).resize((size, size), Image.BILINEAR)))
    saliency = torch.from_numpy(cv2.resize(saliency, (size, size), interpolation=cv2.INTER_NEAREST))
    image = v2.ColorJitter(*color_jitter)(image.permute(2, 0, 1).contiguous())
    if torch.rand(()) < 0.5:
        image, saliency = image.flip(-1), saliency.flip(-1)
    return _reference_normalize(image), saliency[None].clamp(0.0, 1.0)


@pytest.mark.parametrize("color_jitter", [(0.3, 0.3, 0.3, 0.1), (0.0, 0.0, 0.0, 0.0)])
def test_finished_classifier_batches_are_those_jittered_in_the_loader_before(
    tmp_path, color_jitter
):
    layout, ids = _noise_root(tmp_path, [(30, 40), (41, 23), (32, 32)])
    dataset = ClassificationDataset(
        layout,
        ids,
        {i: (1,) for i in ids},
        C,
        tmp_path / "saliency",
        24,
        train=True,
        color_jitter=color_jitter,
    )
    keys = [(index % len(ids), 1000 + index) for index in range(10)]
    batch = _finished(dataset, [SeededSamples(dataset)[key] for key in keys])
    flips = set()
    for row, (index, seed) in enumerate(keys):
        torch.manual_seed(seed)
        image, saliency = _reference_classification(
            layout, tmp_path / "saliency", ids[index], 24, color_jitter
        )
        assert torch.equal(batch["image"][row], image), (row, color_jitter)
        assert torch.equal(batch["saliency"][row], saliency), row
        flips.add(bool(SeededSamples(dataset)[(index, seed)]["flip"]))
    assert flips == {True, False}
    plain = ClassificationDataset(
        layout, ids, {i: (1,) for i in ids}, C, tmp_path / "saliency", 24, train=False
    )
    unaugmented = _finished(plain, [plain[index] for index, _ in keys])["image"]
    assert not torch.equal(batch["image"], unaugmented), "augmentation changed nothing"


def _reference_segmentation(layout, label_dir, image_id, crop, scale_range, train):
    image = read_image(layout.image_path(image_id))
    label = read_label(label_dir / f"{image_id}.png", C)
    if train:
        scale = scale_range[0] + (scale_range[1] - scale_range[0]) * float(torch.rand(()))
        height, width = (max(1, round(side * scale)) for side in label.shape)
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
        label = cv2.resize(label, (width, height), interpolation=cv2.INTER_NEAREST)
    pad = (0, max(0, crop - label.shape[1]), 0, max(0, crop - label.shape[0]))
    image = _reference_normalize(torch.from_numpy(image).permute(2, 0, 1))
    image = torch.nn.functional.pad(image, pad, value=0.0)
    label = torch.nn.functional.pad(torch.from_numpy(label.astype(np.int64)), pad, value=IGNORE)
    height, width = label.shape
    if train:
        top = int(torch.randint(height - crop + 1, ()))
        left = int(torch.randint(width - crop + 1, ()))
    else:
        top, left = (height - crop) // 2, (width - crop) // 2
    image = image[:, top : top + crop, left : left + crop]
    label = label[top : top + crop, left : left + crop]
    if train and torch.rand(()) < 0.5:
        image, label = image.flip(-1), label.flip(-1)
    return image, label


@pytest.mark.parametrize("train", [True, False])
def test_finished_segmentation_batches_are_those_normalised_before_the_crop(tmp_path, train):
    """Scales 0.5-1.5 of 30x40 images against a 32 crop: some crops are padded (on the left too,
    when flipped), others cut; the padding must come out exactly +0.0, as it was padded."""
    layout, ids = _noise_root(tmp_path, [(30, 40), (41, 23), (32, 32)])
    dataset = SegmentationDataset(
        layout,
        ids,
        tmp_path / "labels",
        C,
        crop_size=32,
        scale_range=(0.5, 1.5),
        flip=True,
        train=train,
    )
    keys = [(index % len(ids), 50 + index) for index in range(12)]
    batch = _finished(dataset, [SeededSamples(dataset)[key] for key in keys])
    padded = 0
    for row, (index, seed) in enumerate(keys):
        torch.manual_seed(seed)
        image, label = _reference_segmentation(
            layout, tmp_path / "labels", ids[index], 32, (0.5, 1.5), train
        )
        assert torch.equal(batch["image"][row], image), row
        assert torch.equal(batch["image"][row].signbit(), image.signbit()), row
        assert torch.equal(batch["label"][row], label), row
        padded += int((image == 0).all(0).any())
    assert padded, "no crop was padded"
