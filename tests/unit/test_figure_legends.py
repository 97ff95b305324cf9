"""Figure details that a glance at a finished run's PNGs would miss (tests/workflow/test_figures.py
draws the real ones)."""

import numpy as np

from i2crc_core.report.plotting import plt, save_png
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


def test_class_names_with_dollar_signs_are_drawn_as_written(tmp_path):
    """Matplotlib reads text between two `$` as math: `x$_$` failed when the examples figure
    was saved (a ValueError), `$5 and $10` came out in italics without its dollars."""
    names = ["x$_$", "$5 and $10", "plain"]
    palette = figures.label_palette(names)
    figure = plt.figure()
    figures.class_legend(figure, names, palette, {0, 1, 2, 3, 255})
    texts = [text.get_text() for text in figure.legends[0].get_texts()]
    drawn = [text._preprocess_math(text.get_text()) for text in figure.legends[0].get_texts()]
    save_png(figure, tmp_path / "legend.png")
    assert (tmp_path / "legend.png").stat().st_size > 0
    assert texts == ["background", r"x\$_\$", r"\$5 and \$10", "plain", "ignore"]
    assert [string for string, math in drawn] == ["background", *names, "ignore"]
    assert not any(math for _, math in drawn), "nothing drawn as math"
