"""Figure details that a glance at a finished run's PNGs would miss (tests/workflow/test_figures.py
draws the real ones)."""

import numpy as np

from i2crc_core.report.plotting import plt
from i2crc_core.stages import figures


def test_the_attention_legend_tells_inside_from_outside():
    curve = {
        "epoch": np.array([1, 2]),
        **{stat: np.array([0.1, 0.2]) for stat, *_ in figures.ATTENTION_LINES},
    }
    figure, panels = plt.subplots(1, 1, squeeze=False)
    try:
        figures._attention_row({"exp": curve}, list(panels[0]), {"exp": "C0"})
        legend = panels[0][0].get_legend()
        styles = {
            text.get_text(): line.get_linestyle()
            for text, line in zip(legend.get_texts(), legend.legend_handles)
        }
        assert styles["mean inside"] != styles["mean outside"]
        assert styles["max inside"] != styles["max outside"]
        # A handle long enough for a dash and a gap between its two end markers.
        assert legend.handlelength >= 4 and legend.numpoints == 2
    finally:
        plt.close(figure)
