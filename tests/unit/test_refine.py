"""docs/method.md §6 / paper Eq. 9-11: object guided label refinement on hand-built arrays."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from i2crc_core.infra.config import defaults
from i2crc_core.method.refine import refine_label

IGN = 255


# Eq. 10 on every image: the rules below are the paper's on single-class images too
DEFAULTS = {**defaults()["refinement"], "multi_class_only": False}


def refine(prediction, initial, class_ids, **options):
    return refine_label(
        np.asarray(prediction, np.uint8),
        np.asarray(initial, np.uint8),
        class_ids,
        **{**DEFAULTS, "min_foreground": 0.0, **options},
    ).tolist()


def test_eq9_classes_outside_the_image_label_become_ignore():
    prediction = [[1, 2, 3, 0]]
    initial = [[0, 0, 0, 0]]
    # Image label {1, 3}: predicted 2 is impossible -> 255; 1, 3 and background stay.
    assert refine(prediction, initial, [1, 3]) == [[1, IGN, 3, 0]]


def test_eq10_predicted_background_takes_the_initial_object_label():
    prediction = [[0, 0, 1, 2]]
    initial = [[2, 0, 2, 1]]
    # Only predicted background is relabelled; predicted objects keep the prediction.
    assert refine(prediction, initial, [1, 2]) == [[2, 0, 1, 2]]


def test_eq10_initial_ignore_propagates_to_predicted_background():
    # Literal Eq. 10: L = 255 is "L != 0", so the predicted-background pixel becomes 255.
    assert refine([[0, 0, 1]], [[IGN, 0, IGN]], [1]) == [[IGN, 0, 1]]


def test_eq10_initial_classes_outside_image_label_are_not_copied():
    assert refine([[0, 0, 1]], [[5, 1, 0]], [1]) == [[IGN, 1, 1]]


def test_eq10_multi_class_only_skips_single_class_images():
    prediction = [[0, 1, 0]]
    initial = [[1, 1, IGN]]
    assert refine(prediction, initial, [1], multi_class_only=True) == [[0, 1, 0]]
    assert refine(prediction, initial, [1], multi_class_only=False) == [[1, 1, IGN]]
    # Two classes: Eq. 10 applies even with multi_class_only.
    assert refine([[0, 1, 2]], [[2, 1, 2]], [1, 2], multi_class_only=True) == [[2, 1, 2]]


def test_eq11_missing_class_makes_background_ignore():
    prediction = [[0, 1, 1, 0]]
    initial = [[0, 1, 0, 0]]
    # Class 3 is in the image label but nowhere in P -> all background -> 255.
    assert refine(prediction, initial, [1, 3]) == [[IGN, 1, 1, IGN]]


def test_eq11_checks_after_eq10_recovered_the_class():
    prediction = [[0, 1, 0]]
    initial = [[0, 0, 3]]
    # Class 3 is missing from P but Eq. 10 brings it back from L: no Eq. 11.
    assert refine(prediction, initial, [1, 3]) == [[0, 1, 3]]


def test_eq11_checks_after_eq9_removed_wrong_classes():
    # The only "object" was a class not in the label: Eq. 9 removes it, class 2 is missing.
    assert refine([[4, 0, 0]], [[0, 0, 0]], [2]) == [[IGN, IGN, IGN]]


def test_too_little_foreground_makes_whole_image_ignore():
    prediction = np.zeros((10, 10), np.uint8)
    prediction[0, 0] = 1
    initial = np.zeros_like(prediction)
    out = refine_label(prediction, initial, [1], **{**DEFAULTS, "min_foreground": 0.01})
    assert out[0, 0] == 1 and (out.ravel()[1:] == 0).all()
    assert (
        refine_label(prediction, initial, [1], **{**DEFAULTS, "min_foreground": 0.02}) == IGN
    ).all()


def test_inputs_are_not_modified():
    prediction = np.array([[0, 2]], np.uint8)
    initial = np.array([[1, 1]], np.uint8)
    refine_label(prediction, initial, [1], **DEFAULTS)
    assert prediction.tolist() == [[0, 2]] and initial.tolist() == [[1, 1]]


@pytest.mark.parametrize(
    "prediction, initial, class_ids",
    [
        (np.zeros((2, 2), np.uint8), np.zeros((2, 3), np.uint8), [1]),
        (np.zeros((2, 2), np.int64), np.zeros((2, 2), np.uint8), [1]),
        (np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.uint8), [0]),
    ],
)
def test_bad_inputs_raise(prediction, initial, class_ids):
    with pytest.raises(ValueError):
        refine_label(prediction, initial, class_ids, **DEFAULTS)


@st.composite
def refine_inputs(draw):
    shape = (draw(st.integers(1, 6)), draw(st.integers(1, 6)))
    class_ids = draw(st.lists(st.integers(1, 20), min_size=1, max_size=3, unique=True))
    values = st.sampled_from([0, 255, *range(1, 21)])
    prediction = draw(hnp.arrays(np.uint8, shape, elements=values))
    initial = draw(hnp.arrays(np.uint8, shape, elements=st.sampled_from([0, 255, *class_ids])))
    return prediction, initial, class_ids, draw(st.booleans())


@settings(max_examples=150, deadline=None)
@given(refine_inputs())
def test_property_refined_labels_are_background_image_classes_or_ignore(inputs):
    prediction, initial, class_ids, multi_class_only = inputs
    out = refine_label(
        prediction, initial, class_ids, **{**DEFAULTS, "multi_class_only": multi_class_only}
    )
    assert out.shape == prediction.shape and out.dtype == np.uint8
    assert set(np.unique(out).tolist()) <= {0, 255, *class_ids}
    # Refinement never invents an object where both P and L said background.
    both_background = (prediction == 0) & (initial == 0)
    assert np.isin(out[both_background], [0, 255]).all()
