"""Saliency maps: loading, OpenCV detectors, a simulated imperfect detector, and their quality.

The method only needs a class-agnostic foreground map per training image. Real detectors
(the paper's, or OpenCV's) are imperfect; the built-in synthetic benchmark therefore models a
detector with documented defects (`simulate_detector`) instead of handing the method the truth.
Its errors are those of real detectors, not pixel noise: missed (attenuated) parts of objects,
false salient blobs on the background, and soft boundaries, on an otherwise smooth map whose
background is 0; its sizes scale with the image, so its quality does not depend on it.

OpenCV is imported by the functions that use it, so that reading maps of the image's own size
(the pseudo-label stage) does not pay for loading it.
"""

import hashlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..infra.errors import SaliencyError
from ..infra.fileio import IGNORE, read_gray
from ..method.metrics import ConfusionMatrix

OPENCV_METHODS = ("spectral_residual", "fine_grained")
# The simulated detector's sizes in pixels are given at this image size (synthetic.py's).
REFERENCE_SIZE = 128
# A missed region keeps a random share in [0, MISS_RESIDUAL) of its saliency.
MISS_RESIDUAL = 0.3
# Missed regions and false blobs are ellipses with axis ratios from 1 to this.
MAX_AXIS_RATIO = 2.0
# Quality (Table VI) binarises a map here: salient = at least half the full value.
SALIENT = 0.5


def image_rng(seed: int, image_id: str) -> np.random.Generator:
    """A generator for one image, stable across processes and Python versions.

    Built from sha256(seed, id) rather than `hash()`, which is salted per process, so the same
    seed gives the same maps however the images are sharded over jobs.
    """
    digest = hashlib.sha256(f"{int(seed)}\0{image_id}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "little"))


def load_saliency(path, size_hw: tuple[int, int]) -> np.ndarray:
    """Read a saliency PNG as float32 (H, W) in [0, 1] at the image size `size_hw`.

    Downloaded maps are sometimes stored at another resolution; they are resized (bilinear),
    never rejected. An all-zero map (nothing salient) is valid. A missing or unreadable file
    raises SaliencyError naming the path.
    """
    height, width = (int(size_hw[0]), int(size_hw[1]))
    saliency = read_gray(Path(path)).astype(np.float32) / 255.0
    if saliency.shape != (height, width):
        import cv2

        saliency = cv2.resize(saliency, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.clip(saliency, 0.0, 1.0)


def compute_opencv(image_rgb: np.ndarray, method: str) -> np.ndarray:
    """Saliency of an RGB uint8 image by an OpenCV static detector, uint8 (H, W) in 0..255.

    The detector's output is stretched to the full 0..255 range per image (min-max), since
    both detectors produce relative, not calibrated, scores.
    """
    import cv2

    factories = {
        "spectral_residual": cv2.saliency.StaticSaliencySpectralResidual_create,
        "fine_grained": cv2.saliency.StaticSaliencyFineGrained_create,
    }
    if method not in factories:
        raise SaliencyError(
            f"unknown OpenCV saliency method '{method}'; choose one of {', '.join(OPENCV_METHODS)}"
        )
    height, width = image_rgb.shape[:2]
    image_bgr = cv2.cvtColor(np.ascontiguousarray(image_rgb, dtype=np.uint8), cv2.COLOR_RGB2BGR)
    success, saliency = factories[method]().computeSaliency(image_bgr)
    if not success:
        raise SaliencyError(
            f"OpenCV saliency method '{method}' failed on an image of {height}x{width}"
        )
    saliency = np.asarray(saliency, dtype=np.float32)
    if saliency.shape != (height, width):
        saliency = cv2.resize(saliency, (width, height), interpolation=cv2.INTER_LINEAR)
    low, high = float(saliency.min()), float(saliency.max())
    if high - low < 1e-12:
        return np.zeros((height, width), dtype=np.uint8)
    return np.round((saliency - low) / (high - low) * 255.0).astype(np.uint8)


def _ellipse(rows, cols, centre_row, centre_col, radius, rng) -> np.ndarray:
    """Inside test of an ellipse of random orientation and random axis ratio a (uniform in
    1..MAX_AXIS_RATIO) of the area of a disc of `radius`: semi-axes radius x sqrt(a) and
    radius / sqrt(a)."""
    stretch = np.sqrt(rng.uniform(1.0, MAX_AXIS_RATIO))
    angle = rng.uniform(0.0, np.pi)
    if radius <= 0:
        return np.zeros(rows.shape, dtype=bool)
    u = (cols - centre_col) * np.cos(angle) + (rows - centre_row) * np.sin(angle)
    v = (rows - centre_row) * np.cos(angle) - (cols - centre_col) * np.sin(angle)
    return (u / (radius * stretch)) ** 2 + (v * stretch / radius) ** 2 <= 1.0


def simulate_detector(
    mask: np.ndarray,
    rng: np.random.Generator,
    *,
    blur_sigma: float,
    miss_prob: float,
    miss_scale: float,
    false_blob_prob: float,
    false_blob_strength: float,
    false_blob_radius: tuple[float, float],
) -> np.ndarray:
    """An imperfect class-agnostic saliency detector applied to a ground-truth label mask.

    `mask` holds 0 (background), 1..C (objects) and 255 (ignore, treated as background).
    Starting from the binary foreground, the model adds the defects of real detectors, and
    only those: the map is smooth, and background away from objects and false detections
    stays exactly 0 (there is no per-pixel noise).

    - missed regions: each connected object region, with probability `miss_prob`, loses an
      elliptical patch (random orientation, axis ratio 1 to 2) of the area of a disc of
      radius `miss_scale` x the region's extent (the longer side of its bounding box), centred
      on a random pixel of the region; inside it the saliency is attenuated to a random
      0-30 % (`MISS_RESIDUAL`) of its value;
    - false detections: with probability `false_blob_prob` one elliptical blob (same shape
      rule) of saliency `false_blob_strength` and mean radius drawn uniformly from
      `false_blob_radius` (low, high) appears centred on a random background pixel (the
      saliency there becomes the larger of the two);
    - soft boundaries: the map is blurred by a Gaussian of standard deviation `blur_sigma`.
      Small false blobs end up weaker than `false_blob_strength`, as small detections are.

    Sizes in pixels (`blur_sigma`, `false_blob_radius`) are given at a 128-pixel image
    (`REFERENCE_SIZE`, as `synthetic.py`'s shapes) and scale with the image's longer side;
    `miss_scale` is relative to each object. So the detector's quality does not depend on the
    image size (measured at 64, 96 and 128 pixels: docs/method.md §9).

    Returns uint8 (H, W) in 0..255 (value / 255 is the saliency). Deterministic given `rng`.
    """
    import cv2

    low, high = (float(value) for value in false_blob_radius)
    if not 0 <= low <= high:
        raise ValueError(
            f"false_blob_radius must be (low, high) with 0 <= low <= high, got {false_blob_radius}"
        )
    mask = np.asarray(mask)
    foreground = ((mask > 0) & (mask != IGNORE)).astype(np.uint8)
    height, width = foreground.shape
    scale = max(height, width) / REFERENCE_SIZE
    saliency = foreground.astype(np.float32)
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)

    count, components, boxes, _ = cv2.connectedComponentsWithStats(foreground, connectivity=8)
    for component in range(1, count):
        if rng.random() >= miss_prob:
            continue
        pixels = np.flatnonzero(components == component)
        pick = pixels[rng.integers(len(pixels))]
        extent = max(boxes[component, cv2.CC_STAT_WIDTH], boxes[component, cv2.CC_STAT_HEIGHT])
        hole = _ellipse(rows, cols, pick // width, pick % width, miss_scale * extent, rng)
        saliency[hole] *= np.float32(rng.uniform(0.0, MISS_RESIDUAL))

    if rng.random() < false_blob_prob:
        background = np.flatnonzero(foreground == 0)
        if len(background):
            pick = background[rng.integers(len(background))]
            radius = rng.uniform(low, high) * scale
            blob = _ellipse(rows, cols, pick // width, pick % width, radius, rng)
            saliency[blob] = np.maximum(saliency[blob], np.float32(false_blob_strength))

    if blur_sigma > 0:
        sigma = blur_sigma * scale
        saliency = cv2.GaussianBlur(saliency, (0, 0), sigmaX=sigma, sigmaY=sigma)
    return np.round(np.clip(saliency, 0.0, 1.0) * 255.0).astype(np.uint8)


class SaliencyScore:
    """Binary (object vs background) mIoU of saliency maps against label masks, over a set.

    The paper's Table VI number. A pixel is salient when its value / 255 (uint8 maps) or its
    value (float maps in [0, 1]) is >= `threshold`; the truth is "any object". Counts are
    accumulated over all images in one 2 x 2 confusion matrix, ignore (255) pixels of the mask
    left out, and the mIoU averages the classes present in the truth (`metrics`).
    """

    def __init__(self, threshold: float = SALIENT):
        self.threshold = threshold
        self.confusion = ConfusionMatrix(2)

    def update(self, saliency_map: np.ndarray, mask: np.ndarray) -> None:
        saliency_map, mask = np.asarray(saliency_map), np.asarray(mask)
        if saliency_map.shape != mask.shape:
            raise ValueError(
                f"saliency map {saliency_map.shape} and mask {mask.shape} differ in size"
            )
        scaled = saliency_map / 255.0 if saliency_map.dtype == np.uint8 else saliency_map
        truth = np.where(mask == IGNORE, IGNORE, mask > 0).astype(np.uint8)
        self.confusion.update(truth, (scaled >= self.threshold).astype(np.uint8))

    def miou(self) -> float:
        return self.confusion.miou()


def saliency_miou(
    saliency_maps: Iterable[np.ndarray], masks: Iterable[np.ndarray], threshold: float = SALIENT
) -> float:
    """`SaliencyScore` of a whole set of maps at once."""
    score = SaliencyScore(threshold)
    for saliency_map, mask in zip(saliency_maps, masks, strict=True):
        score.update(saliency_map, mask)
    return score.miou()
