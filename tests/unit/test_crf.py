"""The dense CRF (segmentation.crf): it snaps a blurred, shifted mask to the image's colour
edge, it runs where predictions are made, off by default, and without pydensecrf2 it is one
line telling how to install it."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from i2crc_core.data.datasets import ImageDataset, normalize
from i2crc_core.data.manifest import Manifest
from i2crc_core.infra.config import defaults, validate_config
from i2crc_core.infra.errors import ConfigError
from i2crc_core.infra.fileio import read_label, write_image
from i2crc_core.method.crf import DenseCRF, dense_crf, settings
from i2crc_core.nets.checkpoints import save_model
from i2crc_core.nets.inference import image_colours, predict_labels
from i2crc_core.nets.models import build_segmenter
from i2crc_core.predict import main
from i2crc_core.stages import predict

REPO = Path(__file__).resolve().parents[2]
CRF = settings({**defaults()["segmentation"]["crf"], "enabled": True})
HEIGHT, WIDTH, EDGE = 48, 64, 32
NUM_CLASSES = 3


def edge_image() -> np.ndarray:
    """Blue left of column EDGE, orange from it on."""
    image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    image[:, :EDGE] = (40, 60, 150)
    image[:, EDGE:] = (230, 140, 40)
    return image


def blurred_mask(shift: int) -> np.ndarray:
    """Probabilities (2, H, W) of a foreground whose soft boundary lies `shift` pixels left of
    the edge: what an upsampled, stride-8 prediction looks like."""
    columns = np.arange(WIDTH)
    foreground = 1 / (1 + np.exp(-(columns - (EDGE - shift)) / 3.0))
    foreground = np.broadcast_to(foreground, (HEIGHT, WIDTH))
    return np.stack([1 - foreground, foreground]).astype(np.float32)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def boundary_error(foreground: np.ndarray) -> int:
    """Largest distance, pixels, between a row's first foreground column and the edge."""
    return int(np.abs(foreground.argmax(axis=1) - EDGE).max())


def test_the_crf_snaps_a_blurred_shifted_mask_to_the_colour_edge():
    truth = np.broadcast_to(np.arange(WIDTH) >= EDGE, (HEIGHT, WIDTH))
    probabilities = blurred_mask(shift=6)
    before = probabilities.argmax(axis=0) == 1
    refined = dense_crf(probabilities, edge_image(), **CRF)
    after = refined.argmax(axis=0) == 1
    assert refined.shape == probabilities.shape and refined.dtype == np.float32
    np.testing.assert_allclose(refined.sum(axis=0), 1, atol=1e-5)
    assert iou(before, truth) < 0.87 and boundary_error(before) == 5
    assert iou(after, truth) > 0.99 and boundary_error(after) == 0


def test_without_a_colour_edge_the_crf_keeps_the_boundary_where_the_mask_has_it():
    flat = np.full((HEIGHT, WIDTH, 3), 128, np.uint8)
    refined = dense_crf(blurred_mask(shift=6), flat, **CRF)
    assert boundary_error(refined.argmax(axis=0) == 1) >= 5, "the edge, not the CRF, moved it"


def test_image_colours_invert_the_normalisation_exactly_for_every_level():
    levels = np.arange(256, dtype=np.uint8)
    image = np.stack([levels, levels[::-1], np.roll(levels, 77)], axis=-1).reshape(16, 16, 3)
    assert np.array_equal(image_colours(normalize(image)[None])[0], image)


def test_settings_are_none_when_disabled_and_the_parameters_without_the_switch_otherwise():
    section = defaults()["segmentation"]["crf"]
    assert section["enabled"] is False and settings(section) is None
    assert CRF == {
        "iter_max": 10,
        "pos_w": 3,
        "pos_xy_std": 1,
        "bi_w": 4,
        "bi_xy_std": 67,
        "bi_rgb_std": 3,
    }, "deeplab-pytorch's configs/voc12.yaml"


def test_the_presets_validate_and_turn_the_crf_on_for_voc_only():
    enabled = {}
    for name in ("config/voc12.yaml", "config/coco14.yaml", "config.yaml"):
        config = validate_config(yaml.safe_load((REPO / name).read_text()))
        enabled[name] = config["segmentation"]["crf"]["enabled"]
        assert settings(config["segmentation"]["crf"]) in (None, CRF)
    assert enabled == {"config/voc12.yaml": True, "config/coco14.yaml": False, "config.yaml": False}


@pytest.mark.parametrize(
    ("crf", "message"),
    [
        ({"iter_max": 0}, "'segmentation.crf.iter_max': 0 is less than the minimum of 1"),
        (
            {"bi_rgb_std": 0},
            "'segmentation.crf.bi_rgb_std': 0 is less than or equal to the minimum",
        ),
        ({"enable": True}, "unknown key 'segmentation.crf.enable'"),
    ],
)
def test_a_bad_crf_key_names_it(crf, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate_config({"segmentation": {"crf": crf}})


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Four images (two sizes) of colour blocks, a manifest and a saved segmenter."""
    root = tmp_path_factory.mktemp("crf")
    rng = np.random.default_rng(0)
    ids = [f"img{index}" for index in range(4)]
    for index, image_id in enumerate(ids):
        image = np.repeat(np.repeat(rng.integers(0, 256, (5, 6, 3), dtype=np.uint8), 8, 0), 8, 1)
        write_image(root / "JPEGImages" / f"{image_id}.jpg", image[: 40 - 8 * (index % 2)])
    labels = {image_id: [1] for image_id in ids}
    Manifest(
        root=str(root),
        image_dir="JPEGImages",
        mask_dir="SegmentationClass",
        split_dir="ImageSets/Segmentation",
        num_classes=NUM_CLASSES,
        class_names=["a", "b", "c"],
        ids={"train": ids, "val": ids},
        image_labels={"train": labels, "val": labels},
    ).save(root / "manifest.json")
    torch.manual_seed(0)
    segmenter = build_segmenter("small", NUM_CLASSES)
    save_model(root / "model.pt", segmenter, class_names=["background", "a", "b", "c"])
    return root, Manifest.load(root / "manifest.json"), segmenter.eval()


def run_predict(root, out_dir, crf, threads=2):
    predict.run(
        manifest_path=root / "manifest.json",
        model_path=root / "model.pt",
        split="val",
        out_dir=out_dir,
        scales=[1.0, 0.75],
        fusion="image",
        crf=crf,
        device="cpu",
        precision="fp32",
        threads=threads,
    )


def test_the_predict_stage_applies_the_crf_over_worker_processes_as_image_by_image(
    tmp_path, dataset
):
    root, manifest, segmenter = dataset
    run_predict(root, tmp_path / "crf", CRF, threads=2)
    run_predict(root, tmp_path / "plain", None)
    changed = 0
    for image_id in manifest.ids["val"]:
        image = ImageDataset(manifest.layout(), [image_id])[0]["image"][None]
        expected = predict_labels(segmenter, image, [1.0, 0.75], DenseCRF(CRF))[0]
        refined = read_label(tmp_path / "crf" / f"{image_id}.png", NUM_CLASSES)
        plain = read_label(tmp_path / "plain" / f"{image_id}.png", NUM_CLASSES)
        assert np.array_equal(refined, expected)
        assert np.array_equal(plain, predict_labels(segmenter, image, [1.0, 0.75])[0])
        changed += int((refined != plain).sum())
    assert changed > 0, "the CRF changed no pixel: was it applied?"


@pytest.fixture
def without_pydensecrf(monkeypatch):
    for name in ("pydensecrf", "pydensecrf.densecrf"):
        monkeypatch.setitem(sys.modules, name, None)  # `import` of it raises ImportError


def test_without_pydensecrf_the_stage_says_how_to_install_it_before_predicting(
    tmp_path, dataset, without_pydensecrf
):
    root, _, _ = dataset
    with pytest.raises(ConfigError) as raised:
        run_predict(root, tmp_path / "out", CRF)
    assert str(raised.value) == (
        "config key 'segmentation.crf.enabled': the dense CRF needs the "
        "optional package pydensecrf2; install it with "
        "pip install -e '.[crf]'"
    )
    assert not (tmp_path / "out").exists()
    run_predict(root, tmp_path / "out", None)  # off, it needs no package
    assert len(list((tmp_path / "out").iterdir())) == 4


def test_the_command_line_crf(dataset, tmp_path, capsys, monkeypatch):
    root, manifest, segmenter = dataset
    images = root / "JPEGImages"
    assert (
        main(
            [
                "--model",
                str(root / "model.pt"),
                str(images),
                "--out",
                str(tmp_path / "crf"),
                "--device",
                "cpu",
                "--crf",
            ]
        )
        == 0
    )
    for image_id in manifest.ids["val"]:
        image = ImageDataset(manifest.layout(), [image_id])[0]["image"][None]
        expected = predict_labels(segmenter, image, [1.0], DenseCRF(CRF))[0]
        assert np.array_equal(
            read_label(tmp_path / "crf" / f"{image_id}.png", NUM_CLASSES), expected
        )
    for name in ("pydensecrf", "pydensecrf.densecrf"):
        monkeypatch.setitem(sys.modules, name, None)
    capsys.readouterr()
    assert (
        main(
            [
                "--model",
                str(root / "model.pt"),
                str(images),
                "--out",
                str(tmp_path / "no"),
                "--device",
                "cpu",
                "--crf",
            ]
        )
        == 1
    )
    assert capsys.readouterr().err == (
        "i2crc error: option --crf: the dense CRF needs the "
        "optional package pydensecrf2; install it with "
        "pip install -e '.[crf]'\n"
    )
    assert not (tmp_path / "no").exists()
