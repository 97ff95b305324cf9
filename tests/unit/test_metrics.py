"""docs/method.md §7: confusion matrix, IoU / mIoU, both ignore conventions, CAM-only sweep."""

import json
import math

import numpy as np
import pytest

from i2crc_core.method.metrics import (
    CamSweep,
    ConfusionMatrix,
    LabelEvaluator,
    iou_from_matrix,
    miou_from_matrix,
)

IGN = 255
GT = np.array([[0, 0, 1, 1], [0, 2, 2, IGN]], np.uint8)
PRED = np.array([[0, 1, 1, 1], [IGN, 2, 0, 2]], np.uint8)


def test_confusion_matrix_by_hand():
    cm = ConfusionMatrix(3)
    cm.update(GT, PRED)
    # Valid pairs (gt, pred): (0,0) (0,1) (1,1) (1,1) (2,2) (2,0); (0,255) and (255,2) dropped.
    assert cm.matrix.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    # IoU: bg 1/(2+2-1)=1/3, class1 2/(2+3-2)=2/3, class2 1/(2+1-1)=1/2.
    np.testing.assert_allclose(cm.iou(), [1 / 3, 2 / 3, 1 / 2])
    assert cm.miou() == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)


def test_class_absent_from_gt_is_excluded_from_miou():
    gt = np.array([[0, 1]], np.uint8)
    pred = np.array([[2, 1]], np.uint8)  # class 2 predicted but not in GT: IoU 0, excluded
    cm = ConfusionMatrix(4)
    cm.update(gt, pred)
    iou = cm.iou()
    assert iou[0] == 0 and iou[1] == 1 and iou[2] == 0 and math.isnan(iou[3])
    assert cm.miou() == pytest.approx(0.5)


def test_updates_add_up_to_one_update_of_the_whole():
    whole = ConfusionMatrix(3)
    whole.update(np.concatenate([GT, GT[::-1]]), np.concatenate([PRED, PRED[:, ::-1]]))
    parts = ConfusionMatrix(3)
    parts.update(GT, PRED)
    parts.update(GT[::-1], PRED[:, ::-1])
    assert np.array_equal(parts.matrix, whole.matrix)


def test_bincount_matches_naive_loop_on_random_labels():
    rng = np.random.default_rng(1)
    gt = rng.choice([0, 1, 2, 3, 4, IGN], size=(17, 23)).astype(np.uint8)
    pred = rng.choice([0, 1, 2, 3, 4, IGN], size=(17, 23)).astype(np.uint8)
    expected = np.zeros((5, 5), np.int64)
    for g, p in zip(gt.ravel(), pred.ravel()):
        if g != IGN and p != IGN:
            expected[g, p] += 1
    cm = ConfusionMatrix(5)
    cm.update(gt, pred)
    cm.update(gt.astype(np.int64), pred.astype(np.int32))
    assert np.array_equal(cm.matrix, 2 * expected)


@pytest.mark.parametrize("which", ["gt", "pred"])
def test_out_of_range_values_raise(which):
    good = np.zeros((2, 2), np.uint8)
    bad = np.array([[0, 7], [0, 0]], np.uint8)
    cm = ConfusionMatrix(3)
    with pytest.raises(ValueError, match=r"\[7\]"):
        cm.update(bad, good) if which == "gt" else cm.update(good, bad)
    with pytest.raises(ValueError, match="shape"):
        cm.update(good, np.zeros((3, 2), np.uint8))


def test_label_evaluator_reports_both_conventions():
    evaluator = LabelEvaluator(3)
    evaluator.update(GT, PRED)
    result = evaluator.result()
    json.dumps(result, allow_nan=False)
    # (a) as in test_confusion_matrix_by_hand.
    assert result["miou_ignore_excluded"] == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)
    # (b) the (0, 255) pixel counts as (0, 0): matrix [[2,1,0],[0,2,0],[1,0,1]];
    #     IoU bg 2/(3+3-2)=1/2, class1 2/3, class2 1/2.
    assert result["iou_ignore_as_background"] == pytest.approx([1 / 2, 2 / 3, 1 / 2])
    assert result["miou_ignore_as_background"] == pytest.approx((1 / 2 + 2 / 3 + 1 / 2) / 3)
    # One of the 7 GT-valid pixels was predicted 255.
    assert result["ignored_fraction"] == pytest.approx(1 / 7)
    assert result["gt_valid_pixels"] == 7 and result["predicted_ignore_pixels"] == 1


def test_ignore_as_background_penalises_ignored_objects():
    gt = np.array([[1, 1, 1, 1, 0, 0]], np.uint8)
    pred = np.array([[1, IGN, IGN, IGN, 0, 0]], np.uint8)
    evaluator = LabelEvaluator(2)
    evaluator.update(gt, pred)
    result = evaluator.result()
    assert result["miou_ignore_excluded"] == 1.0
    # (b): class 1 IoU 1/4, background 2/(2+5-2) = 2/5.
    assert result["miou_ignore_as_background"] == pytest.approx((1 / 4 + 2 / 5) / 2)
    assert result["ignored_fraction"] == pytest.approx(3 / 6)


def test_matrix_helpers_on_empty_matrix():
    empty = np.zeros((3, 3), np.int64)
    assert np.isnan(iou_from_matrix(empty)).all() and math.isnan(miou_from_matrix(empty))


def naive_sweep(items, num_classes, thresholds):
    mious = []
    for threshold in thresholds:
        cm = ConfusionMatrix(num_classes)
        for gt, cams, class_ids in items:
            label = np.asarray(class_ids, np.uint8)[cams.argmax(axis=0)]
            label[cams.max(axis=0) < threshold] = 0
            cm.update(gt, label)
        mious.append(cm.miou())
    return mious


def test_cam_sweep_equals_naive_loop_on_random_data():
    rng = np.random.default_rng(7)
    num_classes = 6
    items = []
    for _ in range(5):
        class_ids = sorted(rng.choice(np.arange(1, num_classes), rng.integers(1, 4), replace=False))
        cams = rng.random((len(class_ids), 9, 11)).astype(np.float32)
        cams[:, 0, 0] = 0.3  # exactly on a threshold: background only below it
        gt = rng.choice([0, *class_ids, IGN], size=(9, 11)).astype(np.uint8)
        items.append((gt, cams, class_ids))
    thresholds = [0.5, 0.1, 0.3, 0.7, 0.9]
    sweep = CamSweep(num_classes, thresholds)
    for gt, cams, class_ids in items:
        sweep.update(gt, cams, class_ids)
    result = sweep.result()
    assert result["thresholds"] == pytest.approx(sorted(thresholds))
    assert result["miou"] == pytest.approx(naive_sweep(items, num_classes, sorted(thresholds)))
    best = int(np.argmax(result["miou"]))
    assert result["best_miou"] == pytest.approx(result["miou"][best])
    assert result["best_threshold"] == pytest.approx(sorted(thresholds)[best])
    assert result["best_at_edge"] == (best in (0, len(thresholds) - 1))


def test_cam_sweep_by_hand_and_edge_flag():
    gt = np.array([[0, 1, 1, 0]], np.uint8)
    cams = np.array([[[0.1, 0.9, 0.4, 0.6]]], np.float32)
    sweep = CamSweep(2, [0.2, 0.5, 0.8])
    sweep.update(gt, cams, [1])
    result = sweep.result()
    # t=0.2: pred [0,1,1,1] -> bg 1/2, cls 2/3; t=0.5: [0,1,0,1] -> bg 1/3, cls 1/3;
    # t=0.8: [0,1,0,0] -> bg 2/3, cls 1/2.
    assert result["miou"] == pytest.approx([7 / 12, 1 / 3, 7 / 12])
    assert result["best_threshold"] == pytest.approx(0.2) and result["best_at_edge"] is True
    matrices = sweep.matrices()
    assert matrices[1].tolist() == [[1, 1], [1, 1]]


def test_cam_sweep_scores_a_fixed_threshold_exactly_on_or_off_the_sweep():
    gt = np.array([[0, 1, 1, 0]], np.uint8)
    cams = np.array([[[0.1, 0.9, 0.4, 0.6]]], np.float32)

    def swept(fixed):
        sweep = CamSweep(2, [0.2, 0.5, 0.8], fixed=fixed)
        sweep.update(gt, cams, [1])
        return sweep.result()

    # t=0.05: pred [1,1,1,1] -> bg 0, cls 2/4; t=0.4 (a CAM value: background only below it):
    # [0,1,1,1] -> bg 1/2, cls 2/3; t=0.5 (on the sweep): as in the by-hand test above.
    for fixed, miou in ((0.05, 1 / 4), (0.4, 7 / 12), (0.5, 1 / 3)):
        result = swept(fixed)
        assert result["fixed_threshold"] == pytest.approx(fixed)
        assert result["fixed_miou"] == pytest.approx(miou)
        # The sweep reports its own thresholds only, unchanged by the fixed one.
        assert result["thresholds"] == pytest.approx([0.2, 0.5, 0.8])
        assert result["miou"] == pytest.approx([7 / 12, 1 / 3, 7 / 12])
    assert "fixed_miou" not in CamSweep(2, [0.5]).result()


def test_cam_sweep_fixed_threshold_equals_naive_loop_on_random_data():
    rng = np.random.default_rng(3)
    items = []
    for _ in range(4):
        class_ids = sorted(rng.choice(np.arange(1, 5), rng.integers(1, 3), replace=False))
        cams = rng.random((len(class_ids), 7, 5)).astype(np.float32)
        items.append(
            (rng.choice([0, *class_ids, IGN], size=(7, 5)).astype(np.uint8), cams, class_ids)
        )
    sweep = CamSweep(5, [0.2, 0.6], fixed=0.37)
    for gt, cams, class_ids in items:
        sweep.update(gt, cams, class_ids)
    assert sweep.result()["fixed_miou"] == pytest.approx(
        naive_sweep(items, 5, [np.float32(0.37)])[0]
    )


def test_cam_sweep_rejects_bad_input():
    with pytest.raises(ValueError):
        CamSweep(3, [])
    sweep = CamSweep(3, [0.5])
    with pytest.raises(ValueError, match="class ids"):
        sweep.update(np.zeros((2, 2), np.uint8), np.zeros((1, 2, 2)), [3])
    with pytest.raises(ValueError, match=r"\[9\]"):
        sweep.update(np.full((2, 2), 9, np.uint8), np.zeros((1, 2, 2)), [1])


def test_average_precision_by_hand():
    from i2crc_core.method.metrics import average_precision

    scores = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.1, 0.4]])
    targets = np.array([[1, 0], [0, 0], [1, 0], [0, 0]])
    ap = average_precision(scores, targets)
    # Class 1: positives ranked 1st (precision 1) and 3rd (2/3); class 2 has no positive.
    assert ap[0] == pytest.approx((1 + 2 / 3) / 2)
    assert math.isnan(ap[1])
    # A perfect ranking is 1 whatever the scores' scale; a reversed one is not.
    assert average_precision(-scores[::-1, :1], targets[::-1, :1])[0] < 1
    assert average_precision(np.array([[5.0], [-3.0]]), np.array([[1], [0]]))[0] == 1.0
    with pytest.raises(ValueError, match="same"):
        average_precision(scores, targets[:, :1])
