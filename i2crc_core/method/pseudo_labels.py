"""Pseudo segmentation labels from CAMs and saliency (docs/method.md §4, the OAA rule of the ref
code).

Scores per pixel: channel 0 (background) = 1 - saliency, channel k = CAM of the k-th class
of the image label. Then, with every number a keyword parameter:

0. with ``stretch_cams``, each CAM is first stretched to [0, 1] by its own minimum and maximum,
   (A - min) / (max - min + 1e-8), as the authors' gen_gt.py does; every later rule, the
   "raw CAM" of rule 4 included, sees the stretched map;
1. scores below ``score_floor`` become 0;
2. pixels where two or more channels exceed ``conflict_threshold`` become 255 (ignore);
3. label = argmax over the channels (an all-zero pixel is background: channel 0 wins ties);
4. a background pixel whose saliency >= ``bg_saliency`` or whose raw CAM of any class
   exceeds ``bg_cam`` becomes 255: only pixels that neither the saliency detector nor a CAM
   finds at all are trusted as background;
5. an image with fewer than ``min_foreground`` (fraction of all pixels) object pixels
   becomes all 255, so an image whose objects were lost teaches nothing wrong.

The ignore masks of rules 2 and 4 are collected and applied last, so no later step can
overwrite a 255.
"""

import numpy as np

from ..infra.fileio import IGNORE


def _check_class_ids(class_ids, num_maps: int) -> np.ndarray:
    class_ids = np.asarray(class_ids, dtype=np.int64).reshape(-1)
    if class_ids.size != num_maps:
        raise ValueError(f"{num_maps} CAMs but {class_ids.size} class ids {class_ids.tolist()}")
    if class_ids.size and (class_ids.min() < 1 or class_ids.max() >= IGNORE):
        raise ValueError(f"class ids {class_ids.tolist()} must lie in 1..{IGNORE - 1}")
    return class_ids


def pseudo_label(
    cams: np.ndarray,
    class_ids,
    saliency: np.ndarray,
    *,
    score_floor: float,
    conflict_threshold: float,
    bg_saliency: float,
    bg_cam: float,
    min_foreground: float,
    stretch_cams: bool,
) -> np.ndarray:
    """Label map uint8 (H, W) from CAMs (K, H, W) in [0, 1] and saliency (H, W) in [0, 1].

    `class_ids` are the K 1-based classes of the CAM channels. Returns values in
    {0} ∪ class_ids ∪ {255}. Comparisons run in float32, the CAMs' own precision.
    """
    cams = np.asarray(cams)
    saliency = np.asarray(saliency)
    if cams.ndim != 3 or saliency.shape != cams.shape[1:]:
        raise ValueError(
            f"CAMs of shape {cams.shape} and saliency of shape {saliency.shape} do not match "
            "(expected (K, H, W) and (H, W))"
        )
    if not np.issubdtype(saliency.dtype, np.floating):
        raise ValueError(f"saliency must be float in [0, 1], got dtype {saliency.dtype}")
    class_ids = _check_class_ids(class_ids, cams.shape[0])
    cams = cams.astype(np.float32, copy=False)
    if stretch_cams:
        low = cams.min(axis=(1, 2), keepdims=True)
        cams = (cams - low) / (cams.max(axis=(1, 2), keepdims=True) - low + np.float32(1e-8))
    floor = np.float32(score_floor)
    conflict_level = np.float32(conflict_threshold)

    background = np.subtract(np.float32(1), saliency, dtype=np.float32)
    background[background < floor] = 0
    best = background
    label = np.zeros(saliency.shape, dtype=np.uint8)
    confident = (background > conflict_level).astype(np.uint8)
    max_cam = np.zeros(saliency.shape, dtype=np.float32)
    for class_id, cam in zip(class_ids.tolist(), cams):
        np.maximum(max_cam, cam, out=max_cam)
        exceeds = cam > conflict_level
        if conflict_level < floor:
            exceeds &= cam >= floor
        confident += exceeds
        # A CAM below the floor scores 0 and cannot beat the background score (>= 0; ties
        # go to the earlier channel, as argmax does), so the floor is one more condition
        # instead of a zeroed copy of the CAM.
        wins = (cam > best) & (cam >= floor)
        np.copyto(label, np.uint8(class_id), where=wins)
        np.copyto(best, cam, where=wins)

    ignore = confident >= 2
    ignore |= (label == 0) & (
        (saliency >= np.float32(bg_saliency)) | (max_cam > np.float32(bg_cam))
    )
    np.copyto(label, np.uint8(IGNORE), where=ignore)
    foreground = label.size - np.count_nonzero(label == 0) - np.count_nonzero(ignore)
    if foreground < min_foreground * label.size:
        label.fill(IGNORE)
    return label
