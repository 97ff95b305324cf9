"""The two training stages on a tiny dataset: the loss curve beside the model, identical after
an interrupted and resumed run, and the model's sidecar."""

import json

import numpy as np
import pytest
import torch

from i2crc_core.data.datasets import SegmentationDataset
from i2crc_core.data.manifest import Manifest
from i2crc_core.infra.errors import ConfigError
from i2crc_core.infra.fileio import write_gray, write_image, write_label
from i2crc_core.method.losses import ATTENTION_STATS, LOSS_PARTS
from i2crc_core.nets import training
from i2crc_core.nets.models import build_segmenter
from i2crc_core.nets.training import read_curve
from i2crc_core.stages import pretrain, train_classifier, train_segmentation

SIZE = 32
COMMON = {
    "optimizer": "adam",
    "lr": 0.001,
    "momentum": None,
    "weight_decay": 0.0005,
    "backbone": "small",
    "weights": None,
}
CLASSIFIER = {
    **COMMON,
    "input_size": SIZE,
    "epochs": 3,
    "batch_size": 4,
    "lr_decay_epochs": [2],
    "lr_decay_factor": 0.1,
    "color_jitter": [0.0, 0.0, 0.0, 0.0],
    "flip": True,
    "head_init": "pytorch",
}
SEGMENTATION = {
    **COMMON,
    "iterations": 7,
    "batch_size": 2,
    "accumulate": 1,
    "poly_power": 0.9,
    "poly_every": 1,
    "crop_size": SIZE,
    "scale_range": [0.5, 1.5],
    "scale_step": None,
    "flip": True,
    "aspp_rates": None,
    "input_normalisation": "imagenet",
    "msc_scales": None,
}
# The ref code's DeepLab recipe (segmentation/configs/voc12.yaml, main.py), at this size
REF_RECIPE = {
    "accumulate": 2,
    "poly_every": 2,
    "scale_step": 0.25,
    "input_normalisation": "caffe_bgr",
    "msc_scales": [0.5, 0.75],
}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """8 images with one square object of class 1 or 2, masks, saliency maps, a manifest."""
    root = tmp_path_factory.mktemp("voc")
    rng = np.random.default_rng(0)
    ids = [f"im{index}" for index in range(8)]
    for index, image_id in enumerate(ids):
        mask = np.zeros((SIZE, SIZE), np.uint8)
        top, left = rng.integers(0, SIZE // 2, 2)
        mask[top : top + 12, left : left + 12] = 1 + index % 2
        image = rng.integers(0, 80, (SIZE, SIZE, 3), dtype=np.uint8)
        image[mask > 0] = (200, 40, 40) if index % 2 == 0 else (40, 200, 40)
        write_image(root / "JPEGImages" / f"{image_id}.jpg", image)
        write_label(root / "SegmentationClass" / f"{image_id}.png", mask)
        write_gray(root / "saliency" / f"{image_id}.png", (mask > 0) * 255)
    labels = {image_id: [1 + index % 2] for index, image_id in enumerate(ids)}
    Manifest(
        root=str(root),
        image_dir="JPEGImages",
        mask_dir="SegmentationClass",
        split_dir="ImageSets/Segmentation",
        num_classes=2,
        class_names=["red", "green"],
        ids={"train": ids, "val": ids},
        image_labels={"train": labels, "val": labels},
    ).save(root / "manifest.json")
    return root


def _classifier(dataset, out):
    train_classifier.run(
        manifest_path=dataset / "manifest.json",
        saliency_dir=dataset / "saliency",
        model_path=out / "model.pt",
        curve_path=out / "losses.tsv",
        checkpoint_dir=out / "checkpoints",
        training=CLASSIFIER,
        weights=None,
        loss_weights={"lambda_ob": 0.01, "lambda_bg": 0.025, "lambda_csd": 0.1},
        seed=0,
        device="cpu",
        precision="fp32",
        threads=1,
    )


def _segmenter(dataset, out, **changes):
    train_segmentation.run(
        manifest_path=dataset / "manifest.json",
        label_dir=dataset / "SegmentationClass",
        model_path=out / "model.pt",
        curve_path=out / "losses.tsv",
        checkpoint_dir=out / "checkpoints",
        checkpoint_every=3,
        training={**SEGMENTATION, **changes},
        weights=None,
        seed=0,
        device="cpu",
        precision="fp32",
        threads=1,
    )


def _interrupt_after(monkeypatch, module, name, calls):
    """Make `module.name` raise KeyboardInterrupt at its call number `calls` + 1."""
    original, count = getattr(module, name), [0]

    def counted(*args, **kwargs):
        count[0] += 1
        if count[0] > calls:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)


def test_classifier_curve_has_one_row_per_epoch_and_survives_a_resume(
    dataset, tmp_path, monkeypatch
):
    _classifier(dataset, tmp_path / "a")
    expected = (tmp_path / "a" / "losses.tsv").read_text()
    assert expected.splitlines()[0].split("\t") == ["epoch", *LOSS_PARTS, "lr", *ATTENTION_STATS]
    curve = read_curve(tmp_path / "a" / "losses.tsv")
    assert curve["epoch"].tolist() == [1, 2, 3]
    assert curve["lr"].tolist() == pytest.approx([0.001, 0.001, 0.0001]), "lr decays after epoch 2"
    assert np.isfinite(curve["total"]).all() and (curve["cls"] > 0).all()
    assert all(np.isfinite(curve[stat]).all() for stat in ATTENTION_STATS)
    # simple images and 0/1 saliency: the max of a region is at least its mean
    assert (curve["att_in_max"] >= curve["att_in_mean"]).all()
    assert (curve["att_out_max"] >= curve["att_out_mean"]).all()

    with monkeypatch.context() as patch:  # 2 batches per epoch: stop during epoch 3
        _interrupt_after(patch, train_classifier, "total_loss", 5)
        with pytest.raises(KeyboardInterrupt):
            _classifier(dataset, tmp_path / "b")
    assert len((tmp_path / "b" / "losses.tsv").read_text().splitlines()) == 3
    _classifier(dataset, tmp_path / "b")
    assert (tmp_path / "b" / "losses.tsv").read_text() == expected


def test_reading_the_attention_statistics_changes_neither_losses_nor_weights(
    dataset, tmp_path, monkeypatch
):
    _classifier(dataset, tmp_path / "read")
    with monkeypatch.context() as patch:
        patch.setattr(train_classifier, "attention_stats", lambda *_: torch.zeros(2, 4))
        _classifier(dataset, tmp_path / "not_read")
    read, not_read = (read_curve(tmp_path / name / "losses.tsv") for name in ("read", "not_read"))
    for part in LOSS_PARTS:
        assert read[part].tolist() == not_read[part].tolist()
    assert np.isnan(not_read["att_in_mean"]).all(), "no image counted: NaN, not 0"
    weights = [
        torch.load(tmp_path / name / "model.pt", weights_only=True)["model"]
        for name in ("read", "not_read")
    ]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][key], weights[1][key]) for key in weights[0])


def test_segmenter_curve_has_a_row_per_log_interval_and_survives_a_resume(
    dataset, tmp_path, monkeypatch
):
    monkeypatch.setattr(training, "LOG_INTERVAL", 2)
    _segmenter(dataset, tmp_path / "a")
    expected = (tmp_path / "a" / "losses.tsv").read_text()
    curve = read_curve(tmp_path / "a" / "losses.tsv")
    # chunks of 3 iterations: a row every 2 iterations of a chunk and at its end
    assert curve["iteration"].tolist() == [2, 3, 5, 6, 7]
    assert (np.diff(curve["lr"]) < 0).all(), "poly decay"

    with monkeypatch.context() as patch:  # stop during the second chunk, after iteration 5
        _interrupt_after(patch, train_segmentation, "segmentation_loss", 5)
        with pytest.raises(KeyboardInterrupt):
            _segmenter(dataset, tmp_path / "b")
    assert read_curve(tmp_path / "b" / "losses.tsv")["iteration"].tolist() == [2, 3, 5]
    _segmenter(dataset, tmp_path / "b")
    assert (tmp_path / "b" / "losses.tsv").read_text() == expected


def _weights(path):
    return torch.load(path, weights_only=True)["model"]


def _batchnorm_forwards(state: dict) -> set[int]:
    return {int(value) for key, value in state.items() if key.endswith("num_batches_tracked")}


def test_segmenter_batchnorm_is_in_train_mode_at_every_training_forward(dataset, tmp_path):
    """As the ref code, whose freeze_bn is commented out (segmentation/main.py:175-176): every
    BatchNorm counts a batch at each of the 7 training forwards, and its statistics moved."""
    _segmenter(dataset, tmp_path)
    state = _weights(tmp_path / "model.pt")
    assert _batchnorm_forwards(state) == {7}
    assert all(
        not torch.equal(value, torch.zeros_like(value))
        for key, value in state.items()
        if key.endswith("running_mean")
    )


def _their_poly_rates(base: float, total: int, power: float, every: int) -> list[float]:
    """The rate of each iteration 1..total under the ref code's scheduler, transcribed
    (segmentation/libs/utils/lr_scheduler.py, stepped after every iteration with the
    iteration's number, main.py:218): the rate stays unless the number is a multiple of
    `every` (and not past total); then it becomes base (1 - number / total) ^ power."""
    rates, rate = [], base
    for number in range(1, total + 1):
        rates.append(rate)
        if number % every == 0 and number <= total:
            rate = base * (1 - number / total) ** power
    return rates


@pytest.mark.parametrize(("total", "every"), [(35, 10), (10000, 10), (7, 2)])
def test_the_poly_schedule_steps_as_the_ref_codes_every_k_iterations(total, every):
    ours = [
        0.00025 * train_segmentation.poly_lr_factor(step, total=total, power=0.9, every=every)
        for step in range(total)
    ]
    assert ours == pytest.approx(_their_poly_rates(0.00025, total, 0.9, every), rel=1e-12)
    assert ours[:every] == [0.00025] * every
    every_iteration = [
        train_segmentation.poly_lr_factor(step, total=total, power=0.9, every=1)
        for step in range(total)
    ]
    assert every_iteration == [(1 - min(step, total - 1) / total) ** 0.9 for step in range(total)]


def test_the_ref_code_recipe_trains_and_resumes_exactly(dataset, tmp_path, monkeypatch):
    """Micro-batches, the MSC loss, the caffe_bgr input, discrete scales, the poly rate held
    for 2 iterations: an interrupted and resumed run ends with the uninterrupted run's curve
    and weights; BatchNorm counted 7 iterations x 2 micro-batches x 3 scales of forwards."""
    monkeypatch.setattr(training, "LOG_INTERVAL", 1)
    _segmenter(dataset, tmp_path / "a", **REF_RECIPE)
    expected = (tmp_path / "a" / "losses.tsv").read_text()
    curve = read_curve(tmp_path / "a" / "losses.tsv")
    assert curve["iteration"].tolist() == [1, 2, 3, 4, 5, 6, 7]
    assert curve["lr"].tolist() == pytest.approx(_their_poly_rates(0.001, 7, 0.9, 2), rel=1e-6)
    assert _batchnorm_forwards(_weights(tmp_path / "a" / "model.pt")) == {7 * 2 * 3}
    sidecar = json.loads((tmp_path / "a" / "model.json").read_text())
    assert sidecar["architecture"].endswith("/input=caffe_bgr")

    with monkeypatch.context() as patch:  # 2 losses per iteration: stop in iteration 5, chunk 2
        _interrupt_after(patch, train_segmentation, "msc_segmentation_loss", 9)
        with pytest.raises(KeyboardInterrupt):
            _segmenter(dataset, tmp_path / "b", **REF_RECIPE)
    assert read_curve(tmp_path / "b" / "losses.tsv")["iteration"].tolist() == [1, 2, 3, 4]
    _segmenter(dataset, tmp_path / "b", **REF_RECIPE)
    assert (tmp_path / "b" / "losses.tsv").read_text() == expected
    weights = [_weights(tmp_path / name / "model.pt") for name in ("a", "b")]
    assert all(torch.equal(weights[0][key], weights[1][key]) for key in weights[0])


def test_an_iteration_takes_batch_size_x_accumulate_consecutive_samples(
    dataset, tmp_path, monkeypatch
):
    """Micro-batches of 2, accumulated 2 at a time, see the crops that batches of 4 see, in
    the same order, over every chunk (3 iterations of 2, checkpoints every 3)."""
    seen = []
    finish = SegmentationDataset.finish

    def recording(batch, device):
        seen.append(list(batch["id"]))
        return finish(batch, device)

    monkeypatch.setattr(SegmentationDataset, "finish", staticmethod(recording))
    _segmenter(dataset, tmp_path / "micro", iterations=5, accumulate=2)
    micro, seen[:] = [image for batch in seen for image in batch], []
    _segmenter(dataset, tmp_path / "whole", iterations=5, batch_size=4)
    assert len(micro) == 5 * 2 * 2 and micro == [image for batch in seen for image in batch]


def test_trained_models_have_a_sidecar_naming_classes_data_and_losses(dataset, tmp_path):
    _classifier(dataset, tmp_path)
    sidecar = json.loads((tmp_path / "model.json").read_text())
    assert sidecar["architecture"] == "classifier/small/classes=2"
    assert sidecar["class_names"] == ["background", "red", "green"]
    assert sidecar["loss_weights"] == {"lambda_ob": 0.01, "lambda_bg": 0.025, "lambda_csd": 0.1}
    assert sidecar["trained_on"]["images"] == 8 and sidecar["input"]["training_size"] == SIZE
    assert sidecar["precision"] == ["fp32"], "the precision it resolved to, not the setting"
    payload = torch.load(tmp_path / "model.pt", weights_only=True)
    assert payload["architecture"] == sidecar["architecture"]


def test_pretraining_learns_the_image_labels_and_writes_the_backbone_the_segmenter_starts_from(
    dataset, tmp_path
):
    out = tmp_path / "pretraining"
    pretraining = {key: CLASSIFIER[key] for key in CLASSIFIER if key not in ("backbone", "weights")}
    pretrain.run(
        manifest_path=dataset / "manifest.json",
        model_path=out / "model.pt",
        backbone_path=out / "backbone.pth",
        curve_path=out / "losses.tsv",
        checkpoint_dir=out / "checkpoints",
        training={**pretraining, "epochs": 6},
        seed=0,
        device="cpu",
        precision="fp32",
        threads=1,
    )
    curve = read_curve(out / "losses.tsv")
    assert list(curve) == ["epoch", "cls", "lr"] and curve["epoch"].tolist() == [1, 2, 3, 4, 5, 6]
    assert curve["cls"][-1] < curve["cls"][0]
    sidecar = json.loads((out / "model.json").read_text())
    assert sidecar["trained_on"]["labels"].startswith("image-level labels only")
    trained = torch.load(out / "model.pt", weights_only=True)["model"]
    segmenter = build_segmenter("small", 2, weights=out / "backbone.pth")
    for name, value in segmenter.backbone.state_dict().items():
        assert torch.equal(value, trained[f"backbone.{name}"]), name


def test_a_batch_larger_than_the_training_set_is_a_config_error_before_training(dataset, tmp_path):
    # Epochs drop their last partial batch: 16 of 8 images would train without one step.
    message = (
        "config key '{}.batch_size': 16 is larger than the 8 training images, so an epoch "
        "(last partial batch dropped) takes no step"
    )
    with pytest.raises(ConfigError) as error:
        train_classifier.run(
            manifest_path=dataset / "manifest.json",
            saliency_dir=dataset / "saliency",
            model_path=tmp_path / "model.pt",
            curve_path=tmp_path / "losses.tsv",
            checkpoint_dir=tmp_path / "checkpoints",
            training={**CLASSIFIER, "batch_size": 16},
            weights=None,
            loss_weights={"lambda_ob": 0.01, "lambda_bg": 0.025, "lambda_csd": 0.1},
            seed=0,
            device="cpu",
            precision="fp32",
            threads=1,
        )
    assert str(error.value) == message.format("classifier")
    pretraining = {key: CLASSIFIER[key] for key in CLASSIFIER if key not in ("backbone", "weights")}
    with pytest.raises(ConfigError) as error:
        pretrain.run(
            manifest_path=dataset / "manifest.json",
            model_path=tmp_path / "model.pt",
            backbone_path=tmp_path / "backbone.pth",
            curve_path=tmp_path / "losses.tsv",
            checkpoint_dir=tmp_path / "checkpoints",
            training={**pretraining, "batch_size": 16},
            seed=0,
            device="cpu",
            precision="fp32",
            threads=1,
        )
    assert str(error.value) == message.format("pretraining")
    assert list(tmp_path.iterdir()) == [], "nothing trained, nothing written"


def test_a_segmenter_batch_larger_than_the_training_set_still_steps(dataset, tmp_path):
    # Its iterations draw images with replacement: every iteration is a full batch.
    train_segmentation.run(
        manifest_path=dataset / "manifest.json",
        label_dir=dataset / "SegmentationClass",
        model_path=tmp_path / "model.pt",
        curve_path=tmp_path / "losses.tsv",
        checkpoint_dir=tmp_path / "checkpoints",
        checkpoint_every=2,
        training={**SEGMENTATION, "iterations": 2, "batch_size": 16},
        weights=None,
        seed=0,
        device="cpu",
        precision="fp32",
        threads=1,
    )
    curve = read_curve(tmp_path / "losses.tsv")
    assert curve["iteration"].tolist() == [2] and (curve["loss"] > 0).all()
