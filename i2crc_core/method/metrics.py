"""Segmentation metrics (docs/method.md §7): confusion matrices, IoU, mIoU, CAM-only threshold
sweeps.

Label maps are uint8 with 0 = background, 1..C = objects, 255 = ignore. Ground-truth 255
pixels are never counted. Every accumulator here is a sum of per-image counts.

Counting trick: a (gt, pred) pair of uint8 values is packed into one uint16 code
``gt * 256 + pred`` and counted with a single `np.bincount` over 65,536 bins; the K x K
matrix, the predicted-255 column and any out-of-range value all fall out of that one table.
"""

from collections.abc import Sequence

import numpy as np

from ..infra.fileio import IGNORE


def _as_label(array, name: str) -> np.ndarray:
    """Return `array` as uint8 without copying when it already is; reject values beyond a byte."""
    array = np.asarray(array)
    if array.dtype == np.uint8:
        return array
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must hold integer labels, got dtype {array.dtype}")
    if array.size and (array.min() < 0 or array.max() > IGNORE):
        raise ValueError(f"{name} has values outside 0..255")
    return array.astype(np.uint8)


def _pair_counts(gt, pred, num_classes: int) -> np.ndarray:
    """Counts (256, 256) of (gt value, pred value) pairs; raises on values that are no class."""
    gt = _as_label(gt, "ground truth")
    pred = _as_label(pred, "prediction")
    if gt.shape != pred.shape:
        raise ValueError(f"ground truth {gt.shape} and prediction {pred.shape} differ in shape")
    code = np.left_shift(gt, 8, dtype=np.uint16)
    code |= pred
    counts = np.bincount(code.ravel(), minlength=65536).reshape(256, 256)
    for axis, name in ((1, "ground truth"), (0, "prediction")):
        per_value = counts.sum(axis=axis)
        bad = np.flatnonzero(per_value[num_classes:IGNORE]) + num_classes
        if bad.size:
            raise ValueError(
                f"{name} has values {bad[:10].tolist()} outside 0..{num_classes - 1} and 255"
            )
    return counts


def iou_from_matrix(matrix: np.ndarray) -> np.ndarray:
    """Per-class IoU = TP / (TP + FP + FN); nan for a class absent from both GT and prediction."""
    matrix = np.asarray(matrix, dtype=np.float64)
    true_positive = np.diag(matrix)
    union = matrix.sum(axis=0) + matrix.sum(axis=1) - true_positive
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, true_positive / union, np.nan)


def miou_from_matrix(matrix: np.ndarray) -> float:
    """Mean IoU over the classes present in the ground truth (rows with pixels); nan if none."""
    present = np.asarray(matrix).sum(axis=1) > 0
    if not present.any():
        return float("nan")
    return float(iou_from_matrix(matrix)[present].mean())


def _json_float(value) -> float | None:
    """JSON has no NaN: undefined values become null."""
    value = float(value)
    return None if np.isnan(value) else value


class ConfusionMatrix:
    """K x K pixel counts, rows = ground truth, columns = prediction (K includes background).

    Pixels whose ground truth or prediction is 255 are left out.
    """

    def __init__(self, num_classes: int):
        if not 1 <= num_classes <= IGNORE:
            raise ValueError(f"num_classes must be in 1..{IGNORE}, got {num_classes}")
        self.num_classes = num_classes
        self.matrix = np.zeros((num_classes, num_classes), dtype=np.int64)

    def update(self, gt, pred) -> None:
        """Add one image (or any same-shaped pair of label arrays)."""
        counts = _pair_counts(gt, pred, self.num_classes)
        self.matrix += counts[: self.num_classes, : self.num_classes]

    def iou(self) -> np.ndarray:
        return iou_from_matrix(self.matrix)

    def miou(self) -> float:
        return miou_from_matrix(self.matrix)


class LabelEvaluator:
    """Scores labels that contain 255 (pseudo labels) both ways at once (docs/method.md §7).

    (a) ``ignore_excluded``: predicted-255 pixels are left out of the matrix;
    (b) ``ignore_as_background``: predicted-255 pixels count as background (IRN's convention);
    plus the fraction of ground-truth-valid pixels predicted 255. (a) alone flatters labels
    that turn missed objects into 255, (b) shows the cost.
    """

    def __init__(self, num_classes: int):
        self.confusion = ConfusionMatrix(num_classes)
        self.predicted_ignore = np.zeros(num_classes, dtype=np.int64)

    @property
    def num_classes(self) -> int:
        return self.confusion.num_classes

    def update(self, gt, pred) -> None:
        counts = _pair_counts(gt, pred, self.num_classes)
        self.confusion.matrix += counts[: self.num_classes, : self.num_classes]
        self.predicted_ignore += counts[: self.num_classes, IGNORE]

    def matrix_ignore_as_background(self) -> np.ndarray:
        matrix = self.confusion.matrix.copy()
        matrix[:, 0] += self.predicted_ignore
        return matrix

    def result(self) -> dict:
        """mIoU and per-class IoU under both conventions, ignored fraction, pixel counts."""
        excluded = self.confusion.matrix
        as_background = self.matrix_ignore_as_background()
        valid = int(as_background.sum())
        ignored = int(self.predicted_ignore.sum())
        return {
            "miou_ignore_excluded": _json_float(miou_from_matrix(excluded)),
            "miou_ignore_as_background": _json_float(miou_from_matrix(as_background)),
            "ignored_fraction": _json_float(ignored / valid) if valid else None,
            "iou_ignore_excluded": [_json_float(v) for v in iou_from_matrix(excluded)],
            "iou_ignore_as_background": [_json_float(v) for v in iou_from_matrix(as_background)],
            "gt_valid_pixels": valid,
            "predicted_ignore_pixels": ignored,
        }


class CamSweep:
    """CAM-only labels for many background thresholds, accumulated in one pass per image.

    Label at threshold t: background where the max CAM over the image's classes is below t,
    else the class of the max CAM. The argmax class does not depend on t; only which pixels
    are background does. So each pixel is counted once by (gt, argmax class, number of
    thresholds <= max CAM), and every threshold's confusion matrix follows from cumulative
    sums over the last index. Thresholds are compared in float32, the CAMs' precision.

    `fixed`: a threshold chosen without the ground truth, scored exactly as well (the best of
    the sweep is chosen with it, so it flatters). It joins the bucket edges, so it need not be
    one of `thresholds`; the sweep reports only `thresholds`.
    """

    def __init__(self, num_classes: int, thresholds: Sequence[float], fixed: float | None = None):
        thresholds = np.asarray(thresholds, dtype=np.float32).reshape(-1)
        if thresholds.size == 0 or np.unique(thresholds).size != thresholds.size:
            raise ValueError("thresholds must be a non-empty list of distinct numbers")
        if not 1 <= num_classes <= IGNORE:
            raise ValueError(f"num_classes must be in 1..{IGNORE}, got {num_classes}")
        self.num_classes = num_classes
        self.thresholds = np.sort(thresholds)
        self.fixed = None if fixed is None else np.float32(fixed)
        extra = [] if fixed is None else [self.fixed]
        self._edges = np.unique(np.concatenate([self.thresholds, np.asarray(extra, np.float32)]))
        buckets = self._edges.size + 1
        self.counts = np.zeros((num_classes, num_classes, buckets), dtype=np.int64)
        # gt value -> row; 255 goes to row K (dropped), anything else to row K+1 (an error).
        self._gt_row = np.full(256, num_classes + 1, dtype=np.intp)
        self._gt_row[:num_classes] = np.arange(num_classes)
        self._gt_row[IGNORE] = num_classes

    def update(self, gt, cams, class_ids) -> None:
        """Add one image: gt uint8 (H, W), cams (K, H, W), class_ids the K 1-based classes."""
        gt = _as_label(gt, "ground truth")
        cams = np.asarray(cams)
        class_ids = np.asarray(class_ids, dtype=np.int64).reshape(-1)
        if cams.ndim != 3 or cams.shape[1:] != gt.shape or cams.shape[0] != class_ids.size:
            raise ValueError(
                f"CAMs {cams.shape}, ground truth {gt.shape} and {class_ids.size} class ids "
                "do not match"
            )
        if class_ids.size and (class_ids.min() < 1 or class_ids.max() >= self.num_classes):
            raise ValueError(f"class ids {class_ids.tolist()} outside 1..{self.num_classes - 1}")
        if class_ids.size:
            cams = cams.astype(np.float32, copy=False)
            channel = cams.argmax(axis=0)
            max_cam = np.take_along_axis(cams, channel[None], axis=0)[0]
            predicted = class_ids[channel]
        else:
            max_cam = np.zeros(gt.shape, dtype=np.float32)
            predicted = np.zeros(gt.shape, dtype=np.int64)
        bucket = np.searchsorted(self._edges, max_cam, side="right")
        buckets = self._edges.size + 1
        code = self._gt_row[gt]
        code *= self.num_classes
        code += predicted
        code *= buckets
        code += bucket
        rows = self.num_classes + 2
        counts = np.bincount(code.ravel(), minlength=rows * self.num_classes * buckets)
        counts = counts.reshape(rows, self.num_classes, buckets)
        if counts[self.num_classes + 1].any():
            bad = np.unique(gt[self._gt_row[gt] == self.num_classes + 1])
            raise ValueError(
                f"ground truth has values {bad[:10].tolist()} outside "
                f"0..{self.num_classes - 1} and 255"
            )
        self.counts += counts[: self.num_classes]

    def _matrix(self, threshold) -> np.ndarray:
        """The confusion matrix at one of the bucket edges."""
        edge = int(np.searchsorted(self._edges, threshold))
        below = self.counts[..., : edge + 1].sum(axis=2)  # max CAM < threshold
        matrix = self.counts.sum(axis=2) - below
        matrix[:, 0] += below.sum(axis=1)
        return matrix

    def matrices(self) -> np.ndarray:
        """Confusion matrices (T, K, K), one per sorted threshold."""
        return np.stack([self._matrix(threshold) for threshold in self.thresholds])

    def result(self) -> dict:
        """mIoU per threshold, the best one, whether it sits at an end of the range, and the
        mIoU at the fixed threshold."""
        mious = [miou_from_matrix(matrix) for matrix in self.matrices()]
        defined = [m for m in mious if not np.isnan(m)]
        if defined:
            best = int(np.nanargmax(mious))
            best_threshold = float(self.thresholds[best])
            best_miou = float(mious[best])
            at_edge = best in (0, len(mious) - 1)
        else:
            best_threshold = best_miou = at_edge = None
        result = {
            "thresholds": [float(t) for t in self.thresholds],
            "miou": [_json_float(m) for m in mious],
            "best_threshold": best_threshold,
            "best_miou": best_miou,
            "best_at_edge": at_edge,
        }
        if self.fixed is not None:
            result["fixed_threshold"] = float(self.fixed)
            result["fixed_miou"] = _json_float(miou_from_matrix(self._matrix(self.fixed)))
        return result


def average_precision(scores, targets) -> np.ndarray:
    """Per-class average precision of image-level scores (N, C) against multi-hot targets.

    Non-interpolated AP: images ranked by score (descending), the mean over a class's positives
    of the precision at each positive's rank; nan for a class with no positive image.
    """
    scores = np.asarray(scores, dtype=np.float64)
    targets = np.asarray(targets, dtype=bool)
    if scores.shape != targets.shape or scores.ndim != 2:
        raise ValueError(
            f"scores {scores.shape} and targets {targets.shape} must be the same (N, C)"
        )
    order = np.argsort(-scores, axis=0, kind="stable")
    ranked = np.take_along_axis(targets, order, axis=0)
    hits = np.cumsum(ranked, axis=0)
    precision = hits / np.arange(1, len(scores) + 1)[:, None]
    positives = ranked.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(positives > 0, (precision * ranked).sum(axis=0) / positives, np.nan)
