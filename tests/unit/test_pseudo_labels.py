"""docs/method.md §4: each rule of the OAA pseudo-label construction on hand-built arrays."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from i2crc_core.infra.config import defaults
from i2crc_core.method.pseudo_labels import pseudo_label

IGN = 255


DEFAULTS = defaults()["pseudo_labels"]
# The rules 1-5 on CAMs as given; rule 0 (the stretch) has tests of its own.
RAW = {**DEFAULTS, "stretch_cams": False}


def label_of(cams, class_ids, saliency, **options):
    return pseudo_label(
        np.asarray(cams, dtype=np.float32),
        class_ids,
        np.asarray(saliency, dtype=np.float32),
        **{**RAW, "min_foreground": 0.0, **options},
    )


def test_argmax_picks_the_strongest_channel_and_maps_to_class_ids():
    # Three pixels, saliency 0.6 -> background score 0.4; CAMs for classes 4 and 7.
    cams = [[[0.8, 0.5, 0.1]], [[0.6, 0.7, 0.2]]]
    saliency = [[0.6, 0.6, 0.0]]  # last pixel: bg score 1.0, no CAM -> background
    assert label_of(cams, [4, 7], saliency).tolist() == [[4, 7, 0]]


def test_rule1_scores_below_floor_become_zero():
    # Background score 1 - 0.9 = 0.1 and CAM 0.25: both floored to 0 -> all-zero -> label 0,
    # then rule 4 (saliency 0.9 >= 32/255) marks it 255. With the floor lowered to 0.2 the
    # CAM (0.25) survives and wins over the background (0.1).
    cams = [[[0.25]]]
    saliency = [[0.9]]
    assert label_of(cams, [3], saliency).tolist() == [[IGN]]
    assert label_of(cams, [3], saliency, score_floor=0.2).tolist() == [[3]]


def test_rule1_floored_cam_does_not_beat_a_floored_background():
    # CAM 0.28 would beat the background score 0.25, but both are floored to 0 and the
    # all-zero pixel is background (rule 4 switched off to see it).
    cams = [[[0.28]]]
    saliency = [[0.75]]
    assert label_of(cams, [3], saliency, bg_saliency=1.0, bg_cam=1.0).tolist() == [[0]]


def test_rule2_two_confident_channels_become_ignore():
    cams = [[[0.95, 0.95, 0.95]], [[0.92, 0.5, 0.2]]]
    saliency = [[0.5, 0.5, 0.05]]  # bg scores 0.5, 0.5, 0.95
    # pixel 0: two CAMs > 0.9; pixel 2: background 0.95 and CAM 0.95 both > 0.9.
    assert label_of(cams, [1, 2], saliency).tolist() == [[IGN, 1, IGN]]


def test_rule2_ignore_is_not_overwritten_by_argmax():
    # One CAM > 0.9 only: no conflict, argmax = class 2 despite class 1 at 0.89.
    cams = [[[0.89]], [[0.91]]]
    assert label_of(cams, [1, 2], [[0.5]]).tolist() == [[2]]
    cams = [[[0.91]], [[0.99]]]
    assert label_of(cams, [1, 2], [[0.5]]).tolist() == [[IGN]]


def test_rule3_ties_go_to_the_earlier_channel():
    cams = [[[0.6]], [[0.6]]]
    assert label_of(cams, [5, 6], [[0.9]]).tolist() == [[5]]
    # Tie between background (1 - 0.5) and CAM 0.5 -> background -> rule 4 (saliency
    # 0.5 >= 32/255) -> 255.
    assert label_of([[[0.5]]], [5], [[0.5]]).tolist() == [[IGN]]


def test_rule4_background_needs_low_saliency_and_low_cams():
    cams = [[[0.1, 0.1, 0.55, 0.5]]]
    saliency = [[0.05, 0.2, 0.05, 0.05]]  # bg scores 0.95, 0.8, 0.95, 0.95
    # pixel 0: trusted background; pixel 1: saliency 0.2 >= 32/255 -> 255;
    # pixel 2: CAM 0.55 > 0.5 -> 255; pixel 3: CAM exactly 0.5 is not > 0.5 -> background.
    assert label_of(cams, [9], saliency).tolist() == [[0, IGN, IGN, 0]]


def test_rule4_boundary_saliency_exactly_threshold_is_ignored():
    saliency = np.array([[32 / 255, 31 / 255]], dtype=np.float32)
    cams = np.zeros((1, 1, 2), dtype=np.float32)
    assert label_of(cams, [1], saliency).tolist() == [[IGN, 0]]


def test_rule4_thresholds_are_parameters():
    cams = [[[0.1, 0.3]]]
    saliency = [[0.2, 0.0]]
    assert label_of(cams, [1], saliency, bg_saliency=0.25, bg_cam=0.2).tolist() == [[0, IGN]]


def test_rule5_too_little_foreground_makes_whole_image_ignore():
    cams = np.zeros((1, 10, 10), dtype=np.float32)
    cams[0, 0, 0] = 0.8  # 1 % of the pixels
    saliency = np.zeros((10, 10), dtype=np.float32)
    saliency[0, 0] = 0.9
    labels = label_of(cams, [2], saliency, min_foreground=0.01)
    assert labels[0, 0] == 2 and (labels[1:] == 0).all()  # exactly 1 % is enough
    labels = label_of(cams, [2], saliency, min_foreground=0.02)
    assert (labels == IGN).all()


def test_rule5_ignore_pixels_do_not_count_as_foreground():
    cams = np.full((2, 10, 10), 0.95, dtype=np.float32)  # conflicts everywhere ...
    cams[1, 0, 0] = 0.0  # ... except one pixel of class 1
    saliency = np.full((10, 10), 0.5, np.float32)
    labels = label_of(cams, [1, 2], saliency, min_foreground=0.01)
    assert labels[0, 0] == 1 and np.count_nonzero(labels == IGN) == 99
    assert (label_of(cams, [1, 2], saliency, min_foreground=0.02) == IGN).all()


def test_defaults_match_spec_on_a_small_image():
    cams = np.array([[[0.0, 0.2, 0.7, 0.95], [0.0, 0.4, 0.8, 0.95]]], dtype=np.float32)
    saliency = np.array([[0.0, 0.1, 0.8, 0.96], [0.05, 0.5, 0.9, 0.2]], dtype=np.float32)
    # (0,1): background 0.9 (not > 0.9), CAM 0.2 floored -> 0, saliency 0.1 < 32/255 -> 0.
    # (0,3): background 0.04 floored, one channel > 0.9 -> class 3.
    # (1,1): background 0.5 beats CAM 0.4, but saliency 0.5 >= 32/255 -> 255.
    expected = [[0, 0, 3, 3], [0, IGN, 3, 3]]
    assert pseudo_label(cams, [3], saliency, **RAW).tolist() == expected


def test_no_class_image_is_all_ignore():
    labels = pseudo_label(
        np.zeros((0, 3, 3), np.float32), [], np.zeros((3, 3), np.float32), **DEFAULTS
    )
    assert labels.dtype == np.uint8 and (labels == IGN).all()


def test_inputs_are_not_modified_and_float64_accepted():
    cams = np.array([[[0.2, 0.9]]])
    saliency = np.array([[0.1, 0.7]])
    before = cams.copy(), saliency.copy()
    pseudo_label(cams, [1], saliency, **{**RAW, "min_foreground": 0})
    assert np.array_equal(cams, before[0]) and np.array_equal(saliency, before[1])


@pytest.mark.parametrize(
    "cams, class_ids, saliency",
    [
        (np.zeros((2, 3, 3)), [1], np.zeros((3, 3))),  # K mismatch
        (np.zeros((1, 3, 3)), [1], np.zeros((3, 4))),  # size mismatch
        (np.zeros((1, 3, 3)), [0], np.zeros((3, 3))),  # class 0 is background
        (np.zeros((1, 3, 3)), [1], np.zeros((3, 3), np.uint8)),  # uint8 saliency
    ],
)
def test_bad_inputs_raise(cams, class_ids, saliency):
    with pytest.raises(ValueError):
        pseudo_label(cams, class_ids, saliency, **RAW)


@st.composite
def pseudo_label_inputs(draw):
    height = draw(st.integers(1, 6))
    width = draw(st.integers(1, 6))
    class_ids = draw(st.lists(st.integers(1, 254), min_size=0, max_size=4, unique=True))
    unit = st.floats(0, 1, width=32)
    cams = draw(hnp.arrays(np.float32, (len(class_ids), height, width), elements=unit))
    saliency = draw(hnp.arrays(np.float32, (height, width), elements=unit))
    return cams, class_ids, saliency


def naive_pseudo_label(
    cams, class_ids, saliency, floor=0.3, conflict=0.9, bgs=32 / 255, bgc=0.5, min_fg=0.01
):
    """A literal per-rule transcription of docs/method.md §4, for comparison."""
    cams = np.asarray(cams, dtype=np.float32)
    scores = np.concatenate([(1 - saliency)[None], cams]).astype(np.float32)
    scores[scores < np.float32(floor)] = 0
    conflict_mask = (scores > np.float32(conflict)).sum(axis=0) >= 2
    label = np.array([0] + list(class_ids), dtype=np.uint8)[scores.argmax(axis=0)]
    max_cam = cams.max(axis=0) if len(class_ids) else np.zeros_like(saliency)
    unsure = (label == 0) & ((saliency >= np.float32(bgs)) | (max_cam > np.float32(bgc)))
    label[conflict_mask | unsure] = 255
    if ((label != 0) & (label != 255)).sum() < min_fg * label.size:
        label[:] = 255
    return label


def stretched(cams):
    """gen_gt.py:65 (authors' repo), per class map: (att - min(att)) / (max(att) - min(att) +
    1e-8), over the map's pixels."""
    return np.stack([(c - c.min()) / (c.max() - c.min() + np.float32(1e-8)) for c in cams]).reshape(
        np.shape(cams)
    )


@settings(max_examples=150, deadline=None)
@given(pseudo_label_inputs(), st.booleans())
def test_property_labels_are_background_image_classes_or_ignore(inputs, stretch):
    cams, class_ids, saliency = inputs
    labels = pseudo_label(cams, class_ids, saliency, **{**DEFAULTS, "stretch_cams": stretch})
    assert labels.shape == saliency.shape and labels.dtype == np.uint8
    assert set(np.unique(labels).tolist()) <= {0, 255, *class_ids}
    expected_cams = stretched(cams) if stretch and len(class_ids) else cams
    assert np.array_equal(labels, naive_pseudo_label(expected_cams, class_ids, saliency))


def test_rule0_stretch_makes_a_weak_cam_win_as_the_authors_gen_gt():
    """A CAM peaking at 0.5 with a floor of 0.2 (the authors' maps come back from an 8-bit,
    cubic-resized PNG whose minimum need not be 0): stretched, its peak is 1 and beats the
    background score 0.6, and 0.4 becomes 0.67, above rule 4's 0.5, so that background pixel is
    unsure (255); raw, the peak (0.5) loses to the background (then 255 by its saliency) and 0.4
    leaves its pixel background. Expected labels computed as gen_gt.py:52-81 does on the
    stretched map."""
    cams = np.array([[[0.5, 0.2, 0.4]]], np.float32)
    saliency = np.array([[0.4, 0.0, 0.0]], np.float32)
    raw = label_of(cams, [2], saliency)
    assert raw.tolist() == [[IGN, 0, 0]]
    expected = naive_pseudo_label(stretched(cams), [2], saliency, min_fg=0.0)
    assert expected.tolist() == [[2, 0, IGN]]
    assert label_of(cams, [2], saliency, stretch_cams=True).tolist() == expected.tolist()
