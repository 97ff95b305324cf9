"""Saliency maps: loading, OpenCV detectors, the simulated imperfect detector, its mIoU."""

import dataclasses
import inspect
import os
import subprocess
import sys

import numpy as np
import pytest

from i2crc_core.data.manifest import Manifest
from i2crc_core.data.saliency import (
    OPENCV_METHODS,
    compute_opencv,
    image_rng,
    load_saliency,
    saliency_miou,
    simulate_detector,
)
from i2crc_core.data.synthetic import ShapeParameters, generate, render_image
from i2crc_core.infra.config import defaults
from i2crc_core.infra.errors import DatasetError, SaliencyError
from i2crc_core.infra.fileio import IGNORE, write_gray, write_label
from i2crc_core.stages import saliency_maps

SIMULATED = defaults()["saliency"]["simulated"]
PERFECT = {**SIMULATED, "blur_sigma": 0, "miss_prob": 0, "false_blob_prob": 0}


def _synthetic_masks(count=8, size=64, simple=None):
    """Ground-truth masks of the synthetic benchmark (deterministic); every other image is
    simple (one class) unless `simple` says all are (True) or none is (False)."""
    # The drawing parameters at `generate`'s defaults, whatever fields ShapeParameters has.
    fields = {field.name for field in dataclasses.fields(ShapeParameters)}
    drawing = {
        name: parameter.default
        for name, parameter in inspect.signature(generate).parameters.items()
        if name in fields and parameter.default is not inspect.Parameter.empty
    }
    params = ShapeParameters(image_size=size, num_classes=5, **drawing)
    return [
        render_image(
            np.random.default_rng([7, i]), params, i % 2 == 0 if simple is None else simple
        )[1]
        for i in range(count)
    ]


def _disc_mask(size=64, radius=14, class_id=2):
    rows, cols = np.mgrid[0:size, 0:size]
    mask = np.zeros((size, size), np.uint8)
    mask[(rows - size / 2) ** 2 + (cols - size / 2) ** 2 <= radius**2] = class_id
    return mask


# ---------------------------------------------------------------- image_rng


def test_image_rng_is_stable_per_seed_and_id():
    first = image_rng(3, "img_1").random(5)
    np.testing.assert_array_equal(first, image_rng(3, "img_1").random(5))
    assert not np.array_equal(first, image_rng(3, "img_2").random(5))
    assert not np.array_equal(first, image_rng(4, "img_1").random(5))
    # Non-ASCII ids work too.
    odd = "a b é"
    np.testing.assert_array_equal(image_rng(0, odd).random(3), image_rng(0, odd).random(3))


def test_image_rng_is_the_same_in_another_process_with_another_hash_seed():
    code = (
        "from i2crc_core.data.saliency import image_rng; print(repr(image_rng(11, 'x y').random()))"
    )
    values = set()
    for hash_seed in ("1", "2"):
        result = subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        values.add(result.stdout.strip())
    assert values == {repr(image_rng(11, "x y").random())}


# ---------------------------------------------------------------- load_saliency


def test_load_saliency_same_size_is_value_over_255(tmp_path):
    array = np.arange(0, 256, 4, dtype=np.uint8).reshape(8, 8)
    write_gray(tmp_path / "s.png", array)
    loaded = load_saliency(tmp_path / "s.png", (8, 8))
    assert loaded.dtype == np.float32
    np.testing.assert_allclose(loaded, array / 255.0, atol=1e-7)


def test_load_saliency_resizes_and_stays_in_unit_range(tmp_path):
    array = np.zeros((10, 20), np.uint8)
    array[:, :10] = 255
    write_gray(tmp_path / "s.png", array)
    loaded = load_saliency(tmp_path / "s.png", (25, 41))
    assert loaded.shape == (25, 41)
    assert loaded.dtype == np.float32
    assert loaded.min() >= 0.0 and loaded.max() <= 1.0
    assert loaded[:, :15].min() > 0.99
    assert loaded[:, -15:].max() < 0.01
    shrunk = load_saliency(tmp_path / "s.png", (3, 4))
    assert shrunk.shape == (3, 4)


def test_load_saliency_all_zero_is_valid(tmp_path):
    write_gray(tmp_path / "z.png", np.zeros((6, 6), np.uint8))
    loaded = load_saliency(tmp_path / "z.png", (12, 9))
    assert loaded.shape == (12, 9)
    assert (loaded == 0).all()


def test_load_saliency_missing_or_corrupt_names_the_path(tmp_path):
    path = tmp_path / "maps" / "absent.png"
    with pytest.raises(SaliencyError) as error:
        load_saliency(path, (4, 4))
    assert str(path) in str(error.value)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    with pytest.raises(SaliencyError) as error:
        load_saliency(bad, (4, 4))
    assert str(bad) in str(error.value)


# ---------------------------------------------------------------- OpenCV detectors


@pytest.mark.parametrize("method", OPENCV_METHODS)
def test_compute_opencv_returns_image_sized_uint8(method):
    rng = np.random.default_rng(0)
    image = (rng.random((37, 53, 3)) * 60).astype(np.uint8)
    image[10:25, 15:35] = (230, 200, 30)
    saliency = compute_opencv(image, method)
    assert saliency.shape == (37, 53)
    assert saliency.dtype == np.uint8
    assert saliency.min() == 0 and saliency.max() == 255  # stretched per image


def test_fine_grained_finds_a_bright_square_on_a_flat_background():
    image = np.full((64, 64, 3), 40, np.uint8)
    image[24:40, 24:40] = (230, 200, 30)
    saliency = compute_opencv(image, "fine_grained").astype(float)
    assert saliency[24:40, 24:40].mean() > saliency[:10, :10].mean() + 50


def test_fine_grained_on_a_flat_image_is_all_zero():
    saliency = compute_opencv(np.full((32, 32, 3), 90, np.uint8), "fine_grained")
    assert saliency.shape == (32, 32) and (saliency == 0).all()


@pytest.mark.parametrize("method", ["itti", "SPECTRAL_RESIDUAL", ""])
def test_compute_opencv_unknown_method_is_clear(method):
    with pytest.raises(SaliencyError) as error:
        compute_opencv(np.zeros((8, 8, 3), np.uint8), method)
    message = str(error.value)
    assert f"'{method}'" in message
    assert "spectral_residual" in message and "fine_grained" in message


# ---------------------------------------------------------------- simulated detector


def _outside_foreground_components(saliency, mask, level=32):
    """Connected regions of saliency >= level that do not touch the true foreground."""
    import cv2

    count, components = cv2.connectedComponents(
        (saliency >= level).astype(np.uint8), connectivity=8
    )
    return [c for c in range(1, count) if not (mask[components == c] > 0).any()]


def test_simulate_detector_is_deterministic_per_image_rng():
    mask = _synthetic_masks(1)[0]
    first = simulate_detector(mask, image_rng(0, "syn_train_000001"), **SIMULATED)
    second = simulate_detector(mask, image_rng(0, "syn_train_000001"), **SIMULATED)
    assert first.dtype == np.uint8 and first.shape == mask.shape
    np.testing.assert_array_equal(first, second)
    other_id = simulate_detector(mask, image_rng(0, "syn_train_000002"), **SIMULATED)
    other_seed = simulate_detector(mask, image_rng(1, "syn_train_000001"), **SIMULATED)
    assert not np.array_equal(first, other_id)
    assert not np.array_equal(first, other_seed)


def test_simulate_detector_has_no_noise_parameter():
    assert "noise" not in SIMULATED
    with pytest.raises(TypeError):
        simulate_detector(_disc_mask(), image_rng(0, "n"), **{**PERFECT, "noise": 0.1})


def test_simulate_detector_is_imperfect_but_far_better_than_chance():
    masks = _synthetic_masks(8)
    maps = [simulate_detector(m, image_rng(0, f"id{i}"), **SIMULATED) for i, m in enumerate(masks)]
    miou = saliency_miou(maps, masks)
    assert 0.55 < miou < 0.97
    # Chance: a random map of the same mean saliency.
    rng = np.random.default_rng(0)
    fraction = np.mean([(m > 0).mean() for m in masks])
    chance = [(rng.random(m.shape) < fraction).astype(np.uint8) * 255 for m in masks]
    assert miou > saliency_miou(chance, masks) + 0.2
    # Not all-or-nothing: soft values occur (blurred boundaries, attenuated missed parts).
    values = np.concatenate([m.ravel() for m in maps])
    assert np.count_nonzero((values > 20) & (values < 235)) > 0.02 * values.size


def test_simulate_detector_without_defects_is_the_binary_foreground():
    for index, mask in enumerate(_synthetic_masks(6)):
        saliency = simulate_detector(mask, image_rng(5, str(index)), **PERFECT)
        np.testing.assert_array_equal(saliency, np.where(mask > 0, 255, 0).astype(np.uint8))
        assert saliency_miou([saliency], [mask]) == 1.0


def test_simulate_detector_treats_ignore_as_background():
    mask = _disc_mask()
    mask[:5, :] = IGNORE
    saliency = simulate_detector(mask, image_rng(0, "x"), **PERFECT)
    assert (saliency[:5] == 0).all()
    assert (saliency[mask == 2] == 255).all()


def test_simulate_detector_is_smooth_and_zero_on_background_away_from_objects():
    """No speckles: without false blobs, every salient region (>= 32/255) touches an object,
    and background farther than the blur's reach (4 sigma) from the objects is exactly 0."""
    import cv2

    for index, mask in enumerate(_synthetic_masks(12)):
        saliency = simulate_detector(
            mask, image_rng(1, str(index)), **{**SIMULATED, "false_blob_prob": 0.0}
        )
        assert _outside_foreground_components(saliency, mask) == []
        assert _outside_foreground_components(saliency, mask, level=1) == []
        distance = cv2.distanceTransform((mask == 0).astype(np.uint8), cv2.DIST_L2, 5)
        reach = 4 * SIMULATED["blur_sigma"] * mask.shape[0] / 128 + 1.5
        assert (saliency[distance > reach] == 0).all()
        # Neighbouring pixels differ by far less than a step: the map has no pixel noise.
        assert np.abs(np.diff(saliency.astype(int), axis=1)).max() < 128


def test_simulate_detector_defaults_leave_little_background_above_32():
    """The pseudo-label rule ignores background of saliency >= 32/255: at the defaults that is
    only the blurred boundary band and the false blobs (~6 %; per-pixel noise gave ~23 %)."""
    masks = _synthetic_masks(40)
    maps = [simulate_detector(m, image_rng(3, str(i)), **SIMULATED) for i, m in enumerate(masks)]
    background = np.concatenate([(m == 0).ravel() for m in masks])
    values = np.concatenate([s.ravel() for s in maps])
    assert np.count_nonzero(values[background] >= 32) < 0.10 * np.count_nonzero(background)
    # Most background pixels are exactly 0.
    assert np.count_nonzero(values[background] == 0) > 0.75 * np.count_nonzero(background)
    # At most one salient region off the objects per image: the false blob.
    assert all(len(_outside_foreground_components(s, m)) <= 1 for s, m in zip(maps, masks))


def test_simulate_detector_missed_regions_lower_the_foreground():
    mask = _disc_mask(radius=16)
    missing = simulate_detector(
        mask, image_rng(0, "m"), **{**PERFECT, "miss_prob": 1.0, "miss_scale": 0.3}
    )
    hole = (mask > 0) & (missing < 255)
    assert hole.any()
    # Attenuated to at most 30 % (MISS_RESIDUAL) of the saliency, over a patch of the area of a
    # disc of 0.3 x extent (33 px), ~10 px.
    assert missing[hole].max() <= round(0.3 * 255)
    assert np.count_nonzero(hole) <= 1.2 * np.pi * (0.3 * 33) ** 2
    assert (missing[mask == 0] == 0).all()  # nothing appears outside
    # Over many objects, missed regions lower the foreground's mean saliency and the mIoU.
    masks = _synthetic_masks(12)
    kept = [
        simulate_detector(m, image_rng(4, str(i)), **{**SIMULATED, "miss_prob": 0.0})
        for i, m in enumerate(masks)
    ]
    lost = [
        simulate_detector(m, image_rng(4, str(i)), **{**SIMULATED, "miss_prob": 1.0})
        for i, m in enumerate(masks)
    ]
    foreground = np.concatenate([(m > 0).ravel() for m in masks])
    assert np.concatenate([s.ravel() for s in lost])[foreground].mean() < (
        np.concatenate([s.ravel() for s in kept])[foreground].mean() - 25
    )
    assert saliency_miou(lost, masks) < saliency_miou(kept, masks) - 0.05


def test_simulate_detector_false_blob_appears_on_background():
    mask = _disc_mask(radius=8)
    strong = {
        **PERFECT,
        "false_blob_prob": 1.0,
        "false_blob_strength": 0.9,
        "false_blob_radius": [10.0, 10.0],
    }
    blob = simulate_detector(mask, image_rng(0, "b"), **strong)
    background = blob[mask == 0]
    assert background.max() == round(0.9 * 255)  # a plateau of the blob's strength
    # Radius 10 px at 128 = 5 px at 64: about 79 pixels (an ellipse of that area).
    assert 50 < np.count_nonzero(background) < 110
    assert (blob[mask > 0] == 255).all()  # the object is untouched
    assert len(_outside_foreground_components(blob, mask)) <= 1
    weak = simulate_detector(mask, image_rng(0, "b"), **{**strong, "false_blob_strength": 0.3})
    assert weak[mask == 0].max() == round(0.3 * 255)
    # Blurred, a small blob is weaker than its strength but still salient.
    blurred = simulate_detector(mask, image_rng(0, "b"), **{**strong, "blur_sigma": 2.5})
    assert 128 <= blurred[mask == 0].max() < round(0.9 * 255)


def test_simulate_detector_false_blob_radius_is_checked():
    with pytest.raises(ValueError, match="false_blob_radius"):
        simulate_detector(
            _disc_mask(), image_rng(0, "r"), **{**PERFECT, "false_blob_radius": [8.0, 4.0]}
        )


def test_simulate_detector_blur_softens_the_boundaries():
    mask = _disc_mask(radius=14)
    blurred = simulate_detector(mask, image_rng(0, "s"), **{**PERFECT, "blur_sigma": 3.0})
    edge = blurred[(blurred > 0) & (blurred < 255)]
    assert edge.size > 50  # soft boundary
    assert blurred[32, 32] > 240 and blurred[0, 0] == 0  # centre and corner unchanged
    assert saliency_miou([blurred], [mask]) > 0.9
    wider = simulate_detector(mask, image_rng(0, "s"), **{**PERFECT, "blur_sigma": 6.0})
    assert np.count_nonzero((wider > 0) & (wider < 255)) > 1.5 * edge.size


def test_simulate_detector_sizes_scale_with_the_image():
    """The same scene at 64 and 128 pixels: soft band and false blob scale with the side, so
    their areas grow by ~4."""
    defects = {
        **PERFECT,
        "blur_sigma": 3.0,
        "false_blob_prob": 1.0,
        "false_blob_radius": [10.0, 10.0],
    }
    small = simulate_detector(_disc_mask(64, 14), image_rng(0, "z"), **defects)
    large = simulate_detector(_disc_mask(128, 28), image_rng(0, "z"), **defects)
    for level in (1, 32, 128):
        ratio = np.count_nonzero(large >= level) / np.count_nonzero(small >= level)
        assert 3.4 < ratio < 4.6
    soft_ratio = np.count_nonzero((large > 0) & (large < 255)) / np.count_nonzero(
        (small > 0) & (small < 255)
    )
    assert 3.0 < soft_ratio < 5.0


def test_simulate_detector_defaults_lower_miou_than_perfect():
    masks = _synthetic_masks(8)
    default = [simulate_detector(m, image_rng(2, str(i)), **SIMULATED) for i, m in enumerate(masks)]
    harsh = [
        simulate_detector(
            m,
            image_rng(2, str(i)),
            **{**SIMULATED, "miss_prob": 1.0, "miss_scale": 0.6, "blur_sigma": 6.0},
        )
        for i, m in enumerate(masks)
    ]
    assert saliency_miou(harsh, masks) < saliency_miou(default, masks) < 1.0


@pytest.mark.parametrize("size", [64, 96])
def test_simulate_detector_defaults_match_the_papers_detector_on_simple_images(size):
    """Calibration (docs/method.md §9): binary mIoU ~0.69 on simple images (paper Table VI:
    69.1), whatever the image size. 400 images differ from the 3 x 640 of the calibration by
    ~0.015 (sampling), so the tolerance is 0.03."""
    masks = _synthetic_masks(400, size=size, simple=True)
    maps = [
        simulate_detector(m, image_rng(0, f"syn_train_{i:06d}"), **SIMULATED)
        for i, m in enumerate(masks)
    ]
    assert saliency_miou(maps, masks) == pytest.approx(0.69, abs=0.03)


def test_simulate_detector_all_background_mask():
    mask = np.zeros((16, 16), np.uint8)
    saliency = simulate_detector(mask, image_rng(0, "empty"), **PERFECT)
    assert (saliency == 0).all()
    assert (simulate_detector(mask, image_rng(0, "empty"), **SIMULATED) <= 255).all()


# ---------------------------------------------------------------- saliency_miou


def test_saliency_miou_by_hand():
    mask = np.array([[0, 0, 1, 1], [0, 2, 2, IGNORE]], np.uint8)
    saliency = np.array([[0, 255, 255, 0], [0, 200, 100, 255]], np.uint8)
    # Valid pixels: truth fg = (0,2),(0,3),(1,1),(1,2); predicted fg (>= 127.5) = (0,1),(0,2),(1,1).
    # fg: inter 2, union 5 -> 0.4. bg: truth bg = (0,0),(0,1),(1,0); predicted bg = (0,0),(0,3),
    # (1,0),(1,2); inter 2, union 5 -> 0.4.
    assert saliency_miou([saliency], [mask]) == pytest.approx(0.4)
    as_float = saliency.astype(np.float32) / 255.0
    assert saliency_miou([as_float], [mask]) == pytest.approx(0.4)
    # threshold 0.3 (76.5): (1,2) becomes fg too; fg 3/5, bg 2/4.
    assert saliency_miou([saliency], [mask], threshold=0.3) == pytest.approx((3 / 5 + 2 / 4) / 2)


def test_saliency_miou_accumulates_over_images_and_checks_sizes():
    a_mask, a_map = np.array([[1, 0]], np.uint8), np.array([[255, 0]], np.uint8)
    b_mask, b_map = np.array([[1, 1]], np.uint8), np.array([[0, 0]], np.uint8)
    # fg: inter 1, union 3; bg: inter 1, union 3.
    assert saliency_miou([a_map, b_map], [a_mask, b_mask]) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="differ in size"):
        saliency_miou([np.zeros((2, 2), np.uint8)], [np.zeros((2, 3), np.uint8)])
    assert np.isnan(
        saliency_miou([np.zeros((1, 1), np.uint8)], [np.full((1, 1), IGNORE, np.uint8)])
    )


def test_the_saliency_stage_refuses_to_write_outside_its_folder_for_an_id_of_an_edited_manifest(
    tmp_path,
):
    """Ids are checked where the split lists are read; a manifest edited by hand skips that,
    and the stage's writer still refuses the map of an id that escapes the maps folder."""
    root, escaping = tmp_path / "voc", "../../outside/evil"
    mask = np.zeros((16, 16), np.uint8)
    mask[4:12, 4:12] = 1
    write_label(root / "SegmentationClass" / "a.png", mask)
    outside = tmp_path / "outside" / "evil.png"
    write_label(outside, mask)
    before = outside.read_bytes()
    labels = {"a": [1], escaping: [1]}
    manifest = Manifest(
        root=str(root),
        image_dir="JPEGImages",
        mask_dir="SegmentationClass",
        split_dir="ImageSets/Segmentation",
        num_classes=1,
        class_names=["thing"],
        ids={"train": ["a", escaping], "val": []},
        image_labels={"train": labels, "val": {}},
    )
    manifest.save(tmp_path / "manifest.json")
    maps = tmp_path / "run" / "maps"
    with pytest.raises(DatasetError) as error:
        saliency_maps.run(
            manifest_path=tmp_path / "manifest.json",
            out_dir=maps,
            quality_path=tmp_path / "run" / "quality.json",
            source="simulated",
            folder=None,
            simulated=SIMULATED,
            seed=0,
        )
    assert str(error.value) == f"{maps}: image id {escaping!r} names a file outside this folder"
    assert outside.read_bytes() == before
    assert sorted(p.name for p in tmp_path.rglob("*.png")) == ["a.png", "a.png", "evil.png"]
