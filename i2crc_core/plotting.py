"""Matplotlib for the report's figures: the file backend, chosen before pyplot is first
imported (cluster nodes have no display), and the one way a figure is written."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)

from .fileio import atomic_path  # noqa: E402

__all__ = ["plt", "save_png"]

DPI = 100


def save_png(figure, path) -> None:
    """`figure` as a PNG at `path`, written atomically; the figure is closed either way."""
    try:
        with atomic_path(path) as tmp:
            figure.savefig(tmp, format="png", dpi=DPI)
    finally:
        plt.close(figure)
