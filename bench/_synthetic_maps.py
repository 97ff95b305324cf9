"""Smooth synthetic CAMs and saliency maps shared by the benchmarks (not part of the library).

A CAM here is what `cams.compute_cams` produces: an upsampled coarse (output stride 8)
activation, ReLU'd and normalised to max 1, so a large part is exactly 0 and the rest is a
smooth field — neither pure noise (incompressible) nor constant (trivially compressible).
"""

import cv2
import numpy as np

HEIGHT, WIDTH = 375, 500


def smooth_field(rng, height=HEIGHT, width=WIDTH, stride=8, sigma=1.5) -> np.ndarray:
    """A blurred random field at 1/stride resolution, bilinearly upsampled, in [0, 1]."""
    coarse = rng.standard_normal((height // stride + 1, width // stride + 1)).astype(np.float32)
    coarse = cv2.GaussianBlur(coarse, (0, 0), sigma)
    field = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_LINEAR)
    field -= field.min()
    return field / max(float(field.max()), 1e-6)


def cam(rng, height=HEIGHT, width=WIDTH) -> np.ndarray:
    """ReLU(field - offset) / max: ~30-60 % zeros, smooth elsewhere, max 1."""
    field = smooth_field(rng, height, width)
    field = np.maximum(field - np.float32(rng.uniform(0.3, 0.6)), 0)
    return field / max(float(field.max()), 1e-6)


def cams(rng, num_classes=20, height=HEIGHT, width=WIDTH):
    """(K, H, W) CAMs for 1-3 random classes and their sorted 1-based ids."""
    k = int(rng.integers(1, 4))
    class_ids = sorted(rng.choice(np.arange(1, num_classes + 1), k, replace=False).tolist())
    return np.stack([cam(rng, height, width) for _ in range(k)]), class_ids


def saliency(rng, height=HEIGHT, width=WIDTH) -> np.ndarray:
    """A soft saliency map in [0, 1] with a sharp-ish object region (a steep sigmoid)."""
    field = smooth_field(rng, height, width)
    return 1 / (1 + np.exp(-12 * (field - 0.55)))
