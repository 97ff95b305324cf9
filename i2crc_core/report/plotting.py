"""Matplotlib for the report's figures: the file backend, chosen before pyplot is first
imported (cluster nodes have no display), the one way a figure is written, and the one way a
CAM is drawn over its image (the figures stage and the predict CLI's `--cams`)."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402

from ..infra.fileio import atomic_path  # noqa: E402

__all__ = ["as_written", "cam_overlay", "plt", "save_png"]

DPI = 100
CAM_COLOURS = matplotlib.colormaps["jet"]


def as_written(text: str) -> str:
    """`text` (a user's class name) to be drawn as it is written: Matplotlib reads what lies
    between two `$` as math, drawing `$5 and $10` in italics and failing on `x$_$` (a
    ValueError when the figure is saved)."""
    return text.replace("$", r"\$")


def save_png(figure, path) -> None:
    """`figure` as a PNG at `path`, written atomically; the figure is closed either way."""
    try:
        with atomic_path(path) as tmp:
            figure.savefig(tmp, format="png", dpi=DPI)
    finally:
        plt.close(figure)


def cam_overlay(image: np.ndarray, cam: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3): the image half-blended with a CAM (H, W) in [0, 1] in the jet map."""
    colours = CAM_COLOURS(np.clip(cam, 0.0, 1.0))[..., :3] * 255.0
    return (0.5 * image + 0.5 * colours).round().astype(np.uint8)
