"""Plots of results over seeds (the statistics of stages/summary_seeds.py: a mean and sample
sd per value, as fractions, None without a value): the means in percent with the sds as error
bars, a missing value drawn as nothing. A figure is a row of panels sharing the y axis, with
the first panel's legend below the panels, where it hides no bar, and a title above."""

from dataclasses import dataclass

import numpy as np

from .plotting import plt, save_png

__all__ = ["BarPanel", "LinePanel", "bars_figure", "lines_figure"]


@dataclass
class BarPanel:
    """Grouped bars: a group per entry of `groups`, a bar per series (label -> its statistics,
    one per group)."""

    title: str | None
    groups: list[str]
    series: dict[str, list]


@dataclass
class LinePanel:
    """A line per series (label -> its statistics, one per x) over `x`, and a dotted grey
    vertical line at `mark`."""

    title: str
    xlabel: str
    x: list
    series: dict[str, list]
    mark: float


def _percent(stats: list[dict | None]) -> tuple[np.ndarray, np.ndarray]:
    """Means and sample sds in percent, NaN (nothing drawn) without a value."""
    means = np.array([np.nan if s is None else 100 * s["mean"] for s in stats])
    sds = np.array([np.nan if s is None else 100 * s["std"] for s in stats])
    return means, sds


def _bars(axes, groups: list[str], series: dict[str, list]) -> None:
    width = 0.8 / len(series)
    for index, (label, stats) in enumerate(series.items()):
        means, sds = _percent(stats)
        offset = (index - (len(series) - 1) / 2) * width
        axes.bar(np.arange(len(groups)) + offset, means, width, yerr=sds, capsize=3, label=label)
    axes.set_xticks(np.arange(len(groups)), groups, rotation=20, ha="right")
    axes.set_ylabel("mIoU (%)")
    axes.grid(axis="y", alpha=0.3)


def _finish(figure, title: str, path) -> None:
    handles, labels = figure.axes[0].get_legend_handles_labels()
    figure.legend(
        handles, labels, loc="outside lower center", ncol=len(labels), fontsize=9, frameon=False
    )
    figure.suptitle(title)
    save_png(figure, path)


def bars_figure(panels: list[BarPanel], title: str, path, *, figsize: tuple) -> None:
    figure, axes = plt.subplots(
        1, len(panels), figsize=figsize, sharey=True, squeeze=False, layout="constrained"
    )
    for panel, bars in zip(axes[0], panels):
        _bars(panel, bars.groups, bars.series)
        if bars.title:
            panel.set_title(bars.title, fontsize=10)
    _finish(figure, title, path)


def lines_figure(panels: list[LinePanel], mark_label: str, title: str, path) -> None:
    """Panels 4.2 inches square; the mark's legend entry says `mark_label`."""
    figure, axes = plt.subplots(
        1,
        len(panels),
        figsize=(4.2 * len(panels), 4.2),
        sharey=True,
        squeeze=False,
        layout="constrained",
    )
    for panel, lines in zip(axes[0], panels):
        for label, stats in lines.series.items():
            means, sds = _percent(stats)
            panel.errorbar(lines.x, means, yerr=sds, marker="o", capsize=3, label=label)
        panel.axvline(lines.mark, color="grey", linestyle=":", label=mark_label)
        panel.set_title(lines.title, fontsize=10)
        panel.set_xlabel(lines.xlabel)
        panel.grid(alpha=0.3)
    axes[0, 0].set_ylabel("mIoU (%)")
    _finish(figure, title, path)
