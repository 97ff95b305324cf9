"""Object guided label refinement (paper §III-D, Eq. 9-11; docs/method.md §6).

P = segmentation prediction on a training image, L = initial pseudo label (from CAMs and
saliency), y = the image's classes. In order:

- Eq. 9: a pixel predicted as a class the image does not contain becomes 255 (ignore).
- Eq. 10: a pixel predicted as background where L != 0 takes L's value. Taken literally,
  this includes L = 255: a pixel the initial label was unsure about (saliency or CAM said
  "maybe object") is not trusted as background either, and becomes 255. With
  ``multi_class_only=True`` Eq. 10 runs only for images with two or more classes, as in the
  authors' code. L values that are classes outside y (never produced by `pseudo_label`
  from the same image label) are copied as 255, so Eq. 9 keeps holding.
- Eq. 11: if some class of y has no pixel in P (after Eq. 9 and 10), the object was missed
  and the background cannot be trusted: every background pixel becomes 255.
- (ref code) an image with fewer than ``min_foreground`` object pixels becomes all 255.
"""

import numpy as np

from ..infra.fileio import IGNORE


def refine_label(
    prediction: np.ndarray,
    initial: np.ndarray,
    class_ids,
    *,
    multi_class_only: bool,
    min_foreground: float,
) -> np.ndarray:
    """Refined uint8 (H, W) label with values in {0} ∪ class_ids ∪ {255}."""
    prediction = np.asarray(prediction)
    initial = np.asarray(initial)
    if prediction.shape != initial.shape or prediction.ndim != 2:
        raise ValueError(
            f"prediction of shape {prediction.shape} and initial label of shape "
            f"{initial.shape} must be the same (H, W)"
        )
    for name, array in (("prediction", prediction), ("initial label", initial)):
        if array.dtype != np.uint8:
            raise ValueError(f"{name} must be uint8, got {array.dtype}")
    class_ids = np.asarray(class_ids, dtype=np.int64).reshape(-1)
    if class_ids.size and (class_ids.min() < 1 or class_ids.max() >= IGNORE):
        raise ValueError(f"class ids {class_ids.tolist()} must lie in 1..{IGNORE - 1}")

    # allowed[v] maps a label value to itself when it may appear in this image, else to 255.
    allowed = np.full(256, IGNORE, dtype=np.uint8)
    allowed[0] = 0
    allowed[class_ids] = class_ids
    refined = allowed[prediction]  # Eq. 9 (and a fresh array, never a view of the input)

    if not multi_class_only or np.unique(class_ids).size >= 2:
        relabel = (refined == 0) & (initial != 0)  # Eq. 10
        np.copyto(refined, allowed[initial], where=relabel)

    counts = np.bincount(refined.ravel(), minlength=256)
    if (counts[class_ids] == 0).any():  # Eq. 11
        refined[refined == 0] = IGNORE
        counts[IGNORE] += counts[0]
        counts[0] = 0

    foreground = refined.size - counts[0] - counts[IGNORE]
    if foreground < min_foreground * refined.size:
        refined.fill(IGNORE)
    return refined
