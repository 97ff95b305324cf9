"""What a finished tiny run adds for watching and reusing training: a loss curve and a model
sidecar beside every model, and the report's training-curve and example figures."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from tests.helpers.workflow_project import RUN0

pytestmark = pytest.mark.pipeline


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
    figures = finished_project.root / RUN0 / "figures"
    for name in ("cams.png", "examples_baseline.png", "examples_i2crc.png"):
        with Image.open(figures / name) as figure:
            pixels = np.asarray(figure.convert("RGB"))
        picture_rows = np.nonzero((pixels < 250).any(axis=2).mean(axis=1) > 0.5)[0]
        # Rows mostly covered by pictures come in two runs, the images of row 1 and of row 2.
        gaps = np.diff(picture_rows)
        assert (gaps > 5).sum() == 1, f"{name}: the two rows of pictures touch"


def _kept_open(monkeypatch) -> list:
    """The figures a figure stage draws, kept open for inspection instead of written."""
    from i2crc_core.stages import figures

    drawn = []
    monkeypatch.setattr(figures, "save_png", lambda figure, path: drawn.append(figure))
    return drawn


def _panel(figure, title):
    return next(axes for axes in figure.get_axes() if axes.get_title() == title)


def test_the_training_figure_plots_each_loss_file(finished_project, monkeypatch):
    from i2crc_core.nets.training import read_curve
    from i2crc_core.stages import figures

    out = finished_project.root / RUN0
    experiments = ("baseline", "i2crc")
    classifier = {e: out / e / "classifier" / "losses.tsv" for e in experiments}
    segmentation = {
        r: {e: out / e / "segmentation" / r / "losses.tsv" for e in experiments}
        for r in ("pseudo", "refined")
    }
    drawn = _kept_open(monkeypatch)
    figures.training_figure(
        classifier_curves=classifier, segmentation_curves=segmentation, out_path=None
    )
    total = {
        line.get_label(): line.get_ydata()
        for line in _panel(drawn[0], "classifier: total").get_lines()
    }
    assert set(total) == set(experiments)
    for experiment in experiments:
        assert total[experiment].tolist() == read_curve(classifier[experiment])["total"].tolist()
        for name, paths in segmentation.items():
            lines = {
                line.get_label(): line
                for line in _panel(drawn[0], f"segmentation loss: {name}").get_lines()
            }
            curve = read_curve(paths[experiment])
            assert lines[experiment].get_xdata().tolist() == curve["iteration"].tolist()
            assert lines[experiment].get_ydata().tolist() == curve["loss"].tolist()


def test_the_examples_figure_shows_each_stages_labels(finished_project, monkeypatch):
    """Columns (d), (e) and (g) are the pseudo label, the refined label and the truth of their
    row's image, in the palette's colours; (f) is the retrained model's prediction."""
    from i2crc_core.data.datasets import ImageDataset
    from i2crc_core.data.manifest import Manifest
    from i2crc_core.infra.fileio import read_label
    from i2crc_core.nets.checkpoints import load_model
    from i2crc_core.nets.device import CPU
    from i2crc_core.nets.inference import predict_labels
    from i2crc_core.stages import figures

    out = finished_project.root / RUN0
    run = out / "i2crc"
    manifest = Manifest.load(out / "dataset" / "manifest.json")
    layout, palette = manifest.layout(), figures.label_palette(manifest.class_names)
    model_path = run / "segmentation" / "refined" / "model.pt"
    drawn = _kept_open(monkeypatch)
    figures.examples_figure(
        manifest_path=out / "dataset" / "manifest.json",
        saliency_dir=out / "saliency" / "maps",
        cams_path=run / "cams" / "cams.h5",
        pseudo_dir=run / "labels" / "pseudo",
        refined_dir=run / "labels" / "refined",
        model_path=model_path,
        scales=[1.0],
        fusion="image",
        crf=None,
        num_images=2,
        out_path=None,
    )
    axes = drawn[0].get_axes()
    model = load_model(model_path, CPU, expected_kind="segmenter")
    for row, image_id in enumerate(manifest.ids["train"][:2]):
        shown = [panel.get_images()[0].get_array() for panel in axes[7 * row : 7 * row + 7]]
        expected = {
            3: read_label(run / "labels" / "pseudo" / f"{image_id}.png", manifest.num_classes),
            4: read_label(run / "labels" / "refined" / f"{image_id}.png", manifest.num_classes),
            5: predict_labels(model, ImageDataset(layout, [image_id])[0]["image"][None], [1.0])[0],
            6: read_label(layout.mask_path(image_id), manifest.num_classes),
        }
        for column, label in expected.items():
            np.testing.assert_array_equal(np.asarray(shown[column]), palette[label])
