"""docs/method.md §9: the built-in synthetic benchmark, written in exact VOC2012 layout."""

import numpy as np
import pytest
from PIL import Image

from i2crc_core.data import synthetic
from i2crc_core.data.layout import VocLayout, image_labels_from_masks, read_split
from i2crc_core.infra.config import defaults
from i2crc_core.infra.fileio import read_image, read_label, voc_palette

C = 5
FRACTION = defaults()["dataset"]["synthetic"]["simple_fraction"]
TINY = dict(num_classes=C, num_train=12, num_val=4, image_size=64, simple_fraction=FRACTION)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("syn") / "data"
    stats = synthetic.generate(root, seed=0, **TINY)
    return root, stats


@pytest.fixture(scope="module")
def hundred(tmp_path_factory):
    root = tmp_path_factory.mktemp("syn100") / "data"
    stats = synthetic.generate(
        root,
        seed=4,
        num_classes=C,
        num_train=80,
        num_val=20,
        image_size=48,
        simple_fraction=FRACTION,
    )
    return root, stats


def _masks(root, split):
    layout = VocLayout(root)
    return {i: read_label(layout.mask_path(i), C) for i in read_split(layout.split_path(split))}


def _files(root):
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_generate_writes_a_valid_voc_layout(tiny):
    root, stats = tiny
    layout = VocLayout(root)
    train = read_split(layout.split_path("train"))
    val = read_split(layout.split_path("val"))
    assert train == [f"syn_train_{i:06d}" for i in range(12)]
    assert val == [f"syn_val_{i:06d}" for i in range(4)]
    assert len(list((root / "JPEGImages").glob("*.jpg"))) == 16
    assert len(list((root / "SegmentationClass").glob("*.png"))) == 16
    layout.validate(train, C)
    layout.validate(val, C)
    for image_id in train[:3] + val[:1]:
        with Image.open(layout.image_path(image_id)) as image:
            assert image.format == "JPEG" and image.mode == "RGB" and image.size == (64, 64)
        with Image.open(layout.mask_path(image_id)) as mask:
            assert mask.format == "PNG" and mask.mode == "P"
            assert mask.getpalette()[: 256 * 3] == voc_palette()
    names = (root / "class_names.txt").read_text().split()
    assert names == synthetic.class_names(C) and len(set(names)) == C
    assert stats["num_train"] == 12 and stats["num_val"] == 4
    assert stats["num_classes"] == C and stats["image_size"] == 64
    # Nothing else next to the root (no staging leftovers).
    assert [p.name for p in root.parent.iterdir()] == ["data"]


def test_every_image_has_an_object_and_masks_hold_only_0_to_C(tiny):
    root, _ = tiny
    for split in ("train", "val"):
        for image_id, mask in _masks(root, split).items():
            values = set(np.unique(mask).tolist())
            assert values <= set(range(C + 1)), image_id  # no 255 in the ground truth
            assert 0 in values and len(values) >= 2, image_id
    labels = image_labels_from_masks(
        VocLayout(root), read_split(root / "ImageSets/Segmentation/train.txt"), C
    )
    assert all(1 <= len(classes) <= 3 for classes in labels.values())


def test_images_are_textured_not_flat(tiny):
    root, _ = tiny
    image = read_image(VocLayout(root).image_path("syn_train_000000"))
    assert image.std() > 10
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 500


def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path, tiny):
    root, stats = tiny
    again = tmp_path / "again"
    stats_again = synthetic.generate(again, seed=0, **TINY)
    assert stats_again == stats
    assert _files(again) == _files(root)
    other = tmp_path / "other"
    synthetic.generate(other, seed=1, **TINY)
    other_files = _files(other)
    assert other_files.keys() == _files(root).keys()
    masks = [name for name in other_files if name.endswith(".png")]
    differing = [name for name in masks if other_files[name] != (root / name).read_bytes()]
    assert len(differing) == len(masks)


def test_split_images_do_not_depend_on_split_sizes(tmp_path, tiny):
    # Image i of a split is drawn from (seed, split, i): more images leave the first ones alone
    # except for which are simple (a per-split permutation); check the val masks of equal counts.
    root, _ = tiny
    bigger = tmp_path / "bigger"
    synthetic.generate(bigger, seed=0, **{**TINY, "num_train": 20})
    for image_id in read_split(root / "ImageSets/Segmentation/val.txt"):
        name = f"SegmentationClass/{image_id}.png"
        assert (bigger / name).read_bytes() == (root / name).read_bytes()


def test_simple_fraction_is_respected_approximately(hundred):
    root, stats = hundred
    for split, count in (("train", 80), ("val", 20)):
        masks = _masks(root, split)
        assert len(masks) == count
        simple = np.mean([len(np.unique(m[m > 0])) == 1 for m in masks.values()])
        assert stats[f"simple_fraction_{split}"] == pytest.approx(simple)
        assert abs(simple - 0.64) <= 0.05, (split, simple)
        assert simple < 1.0  # complex images exist too


@pytest.mark.parametrize(
    "fraction, low, high", [(1.0, 1.0, 1.0), (0.0, 0.0, 0.1), (0.3, 0.25, 0.4)]
)
def test_simple_fraction_extremes(tmp_path, fraction, low, high):
    stats = synthetic.generate(
        tmp_path / "r", seed=2, num_classes=C, num_train=30, num_val=2, image_size=48,
        simple_fraction=fraction,
    )  # fmt: skip
    assert low <= stats["simple_fraction_train"] <= high


def test_one_class_per_image_when_max_classes_is_one(tmp_path):
    stats = synthetic.generate(
        tmp_path / "r", seed=0, num_classes=3, num_train=10, num_val=2, image_size=48,
        simple_fraction=0.0, max_classes_per_image=1,
    )  # fmt: skip
    assert stats["simple_fraction_train"] == 1.0 and stats["simple_fraction_val"] == 1.0


def test_every_class_appears(hundred):
    root, stats = hundred
    assert len(stats["images_per_class"]) == C
    assert min(stats["images_per_class"]) > 0
    seen = set()
    for split in ("train", "val"):
        for mask in _masks(root, split).values():
            seen |= set(np.unique(mask).tolist())
    assert seen == set(range(C + 1))
    # images_per_class counts images containing each class, over both splits.
    counts = np.zeros(C, int)
    for split in ("train", "val"):
        for mask in _masks(root, split).values():
            counts[np.unique(mask[mask > 0]) - 1] += 1
    assert counts.tolist() == stats["images_per_class"]


def test_part_is_small_relative_to_the_body(hundred):
    _, stats = hundred
    assert 0.0 < stats["mean_part_object_area_ratio"] < 0.5
    assert 0.0 < stats["mean_object_area_fraction"] < 0.5
    assert 1.0 <= stats["mean_objects_per_image"] <= 6.0


def test_render_image_part_and_body_share_the_label():
    params = synthetic.ShapeParameters(
        image_size=96, num_classes=C, max_classes_per_image=3, max_instances_per_class=1,
        body_length=(40.0, 80.0), body_width_ratio=(0.35, 0.6), part_size=(10.0, 16.0),
        clutter_blobs=(0, 0),
    )  # fmt: skip
    image, label, objects = synthetic.render_image(np.random.default_rng(0), params, simple=True)
    assert image.shape == (96, 96, 3) and image.dtype == np.uint8
    assert label.shape == (96, 96) and label.dtype == np.uint8
    assert len(np.unique(label[label > 0])) == 1
    assert len(objects) >= 1
    for area_fraction, part_ratio in objects:
        assert 0.0 < area_fraction < 1.0
        assert 0.0 < part_ratio < 0.5


def test_class_names_are_unique_for_many_classes():
    for count in (1, 5, 12, 20, 37):
        names = synthetic.class_names(count)
        assert len(names) == count and len(set(names)) == count


def test_resolution_scales_content(tmp_path):
    small = synthetic.generate(
        tmp_path / "s",
        seed=3,
        num_classes=C,
        num_train=40,
        num_val=2,
        image_size=48,
        simple_fraction=FRACTION,
    )
    large = synthetic.generate(
        tmp_path / "l",
        seed=3,
        num_classes=C,
        num_train=40,
        num_val=2,
        image_size=96,
        simple_fraction=FRACTION,
    )
    # Sizes are relative to the image, so the area fractions are about the same.
    assert large["mean_object_area_fraction"] == pytest.approx(
        small["mean_object_area_fraction"], rel=0.35
    )


def test_regenerating_over_an_existing_root_replaces_it(tmp_path, tiny):
    root = tmp_path / "data"
    synthetic.generate(
        root,
        seed=9,
        num_classes=C,
        num_train=20,
        num_val=6,
        image_size=48,
        simple_fraction=FRACTION,
    )
    (root / "stale.txt").write_text("from an older run")
    synthetic.generate(root, seed=0, **TINY)
    assert not (root / "stale.txt").exists()
    assert not (root / "JPEGImages" / "syn_train_000019.jpg").exists()  # old, larger split gone
    assert _files(root) == _files(tiny[0])
    assert [p.name for p in tmp_path.iterdir()] == ["data"]  # no .old / .tmp leftovers


def test_failed_generation_leaves_the_old_root_untouched(tmp_path):
    root = tmp_path / "data"
    synthetic.generate(
        root, seed=0, num_classes=C, num_train=3, num_val=2, image_size=32, simple_fraction=FRACTION
    )
    before = _files(root)
    # clutter_blobs (5, 2) is an invalid range: drawing the first image raises.
    with pytest.raises(ValueError):
        synthetic.generate(
            root,
            seed=1,
            num_classes=C,
            num_train=3,
            num_val=2,
            image_size=32,
            clutter_blobs=(5, 2),
            simple_fraction=FRACTION,
        )
    assert _files(root) == before
    assert [p.name for p in tmp_path.iterdir()] == ["data"]


@pytest.mark.parametrize("bad", [dict(num_classes=0), dict(num_train=0), dict(num_val=0)])
def test_non_positive_counts_are_rejected(tmp_path, bad):
    with pytest.raises(ValueError, match="positive"):
        synthetic.generate(tmp_path / "r", seed=0, **{**TINY, **bad})
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("num_classes", [5, 7, 12])
def test_figures_draw_each_class_in_the_colour_its_name_and_its_parts_have(num_classes):
    import colorsys

    from i2crc_core.data.synthetic import _class_colour, class_names
    from i2crc_core.stages.figures import PALETTE, label_palette

    palette = label_palette(class_names(num_classes))
    for class_id in range(1, num_classes + 1):
        drawn = colorsys.rgb_to_hsv(*(_class_colour(class_id, num_classes) / 255.0))[0]
        shown = colorsys.rgb_to_hsv(*(palette[class_id] / 255.0))[0]
        assert abs((drawn - shown + 0.5) % 1.0 - 0.5) <= 1 / 24 + 1e-6  # the nearest named hue
    assert (palette[num_classes + 1 :] == PALETTE[num_classes + 1 :]).all()
    assert (palette[0] == PALETTE[0]).all(), "background keeps VOC's black"


def test_classes_not_named_after_a_colour_keep_the_voc_palette():
    from i2crc_core.stages.figures import PALETTE, label_palette

    assert (label_palette(["aeroplane", "bicycle", "bird_feeder"]) == PALETTE).all()
