"""What a finished tiny run adds for watching and reusing training: a loss curve and a model
sidecar beside every model, and the report's training-curve and example figures."""

import json

import pytest
import torch
from PIL import Image

from tests.helpers.workflow_project import RUN0

pytestmark = pytest.mark.slow


def test_every_model_has_its_loss_curve_and_sidecar(finished_project):
    out = finished_project.root / RUN0
    models = sorted([*out.glob("*/classifier/model.pt"), *out.glob("*/segmentation/*/model.pt")])
    # Two classifiers, two segmentation rounds each, and the fully supervised segmenter.
    assert len(models) == 2 + 2 * 2 + 1
    for model in models:
        sidecar = json.loads(model.with_suffix(".json").read_text())
        assert sidecar["architecture"] == torch.load(model, weights_only=True)["architecture"]
        rows = (model.parent / "losses.tsv").read_text().splitlines()
        # 2 epochs; 4 iterations in checkpoints of 2 (a row at every checkpoint)
        assert len(rows) == 3, f"{model.parent}: {rows}"


def test_the_default_target_draws_training_curves_and_examples_per_experiment(finished_project):
    figures = finished_project.root / RUN0 / "figures"
    with Image.open(figures / "training.png") as training:
        assert training.size[0] > 1000
    for experiment in ("baseline", "i2crc"):
        with Image.open(figures / f"examples_{experiment}.png") as examples:
            width, height = examples.size
        assert width > 1000 and height > 2 * 150, "7 columns, one row per figure image (2)"


def test_the_rows_of_pictures_are_apart(finished_project):
    """Between the two rows of each picture figure runs a band of background (white), across
    the pictures' columns (without it the rows of images touch)."""
    import numpy as np

    figures = finished_project.root / RUN0 / "figures"
    for name in ("cams.png", "examples_baseline.png", "examples_i2crc.png"):
        with Image.open(figures / name) as figure:
            pixels = np.asarray(figure.convert("RGB"))
        picture_rows = np.nonzero((pixels < 250).any(axis=2).mean(axis=1) > 0.5)[0]
        # Rows mostly covered by pictures come in two runs, the images of row 1 and of row 2.
        gaps = np.diff(picture_rows)
        assert (gaps > 5).sum() == 1, f"{name}: the two rows of pictures touch"
