"""Results table helpers."""

import pytest

from i2crc_core.stages.summary import aggregate_markdown, aggregate_runs, experiment_row


def test_aggregate_runs_gives_mean_and_sample_spread():
    runs = [{"experiments": {"a": {"m": v, "cam_only_threshold": 0.3, "n": None}}}
            for v in (0.2, 0.4, 0.6)]
    stats = aggregate_runs(runs)["a"]["m"]
    assert stats["mean"] == pytest.approx(0.4) and stats["std"] == pytest.approx(0.2)
    assert (stats["min"], stats["max"], stats["n"]) == (0.2, 0.6, 3)
    assert "cam_only_threshold" not in aggregate_runs(runs)["a"]
    assert "| m | 40.0 ± 20.0 |" in aggregate_markdown(aggregate_runs(runs))


def test_experiment_row_reports_pseudo_labels_both_ways():
    label_metrics = {"miou_ignore_excluded": 0.7, "miou_ignore_as_background": 0.5,
                     "ignored_fraction": 0.2}
    row = experiment_row({
        "cams": {"best_miou": 0.4, "best_threshold": 0.3},
        "labels_pseudo": label_metrics,
        "segmentation_pseudo": {"miou_ignore_excluded": 0.45},
    })
    assert row == {
        "cam_only_miou": 0.4, "cam_only_threshold": 0.3,
        "pseudo_train_miou_ignore_excluded": 0.7, "pseudo_train_miou_ignore_as_bg": 0.5,
        "pseudo_train_ignored_fraction": 0.2, "seg_val_round1": 0.45,
    }
