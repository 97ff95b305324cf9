"""Results table helpers."""

from i2crc_core.stages.summary import experiment_row


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
