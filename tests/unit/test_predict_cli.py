"""`python -m i2crc_core.predict`: a saved model on a folder of images, outside the pipeline."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from i2crc_core.data.datasets import normalize
from i2crc_core.infra.fileio import read_image, voc_palette, write_image
from i2crc_core.nets import device
from i2crc_core.nets.checkpoints import save_model
from i2crc_core.nets.inference import predict_labels
from i2crc_core.nets.models import build_classifier, build_segmenter
from i2crc_core.predict import main
from tests.helpers.images import bomb_png, turned_jpeg

NUM_CLASSES = 3
SIZES = {"a.jpg": (40, 56), "b.png": (48, 48), "c.jpeg": (40, 56)}


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """Images of two sizes in JPEG and PNG, a tiny saved segmenter and classifier."""
    root = tmp_path_factory.mktemp("predict")
    rng = np.random.default_rng(0)
    for name, (height, width) in SIZES.items():
        pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        if name.endswith(".png"):
            (root / "images").mkdir(exist_ok=True)
            Image.fromarray(pixels).save(root / "images" / name)
        else:
            write_image(root / "images" / name, pixels)
    (root / "images" / "notes.txt").write_text("not an image")
    torch.manual_seed(0)
    names = ["background", "cat", "dog", "bird"]
    save_model(root / "seg" / "model.pt", build_segmenter("small", NUM_CLASSES), class_names=names)
    save_model(root / "cls" / "model.pt", build_classifier("small", NUM_CLASSES), class_names=names)
    return root


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "i2crc_core.predict", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def _check_labels(out):
    for name, size in SIZES.items():
        with Image.open(out / f"{name.rsplit('.', 1)[0]}.png") as label:
            assert label.mode == "P" and label.getpalette() == voc_palette()
            values = np.array(label)
        assert values.shape == size and values.max() <= NUM_CLASSES


def test_a_segmenter_labels_a_folder_of_images_on_the_cpu(work, tmp_path):
    result = _cli(
        "--model",
        work / "seg" / "model.pt",
        work / "images",
        "--out",
        tmp_path / "out",
        "--device",
        "cpu",
        "--scales",
        "1.0",
        "0.75",
    )
    assert result.returncode == 0, result.stderr
    _check_labels(tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png", "c.png"]
    assert "3/3" in result.stderr, "a progress bar"


def test_it_says_what_the_model_learned_from_and_warns_on_images_far_from_its_size(work, tmp_path):
    trained_on = {"dataset": "/data/shapes", "split": "train", "images": 12, "labels": "masks"}
    names = ["background", "cat", "dog", "bird"]
    for size in (8, 48):
        save_model(
            tmp_path / f"seg{size}" / "model.pt",
            build_segmenter("small", NUM_CLASSES),
            class_names=names,
            input_size=size,
            trained_on=trained_on,
        )
    said = {
        size: _cli(
            "--model",
            tmp_path / f"seg{size}" / "model.pt",
            work / "images",
            "--out",
            tmp_path / f"out{size}",
            "--device",
            "cpu",
        ).stderr
        for size in (8, 48)
    }
    for size, stderr in said.items():
        assert (
            f"model: segmenter trained on 12 images of /data/shapes at {size} px; "
            "classes: cat, dog, bird"
        ) in stderr
    # Median longer side 56 px: 7x the 8-px training images, within 4x of 48 px.
    assert (
        "warning: these images (median longer side 56 px) are 7.0x the size of the model's "
        "training images (8 px)"
    ) in said[8]
    assert "warning" not in said[48]


def test_a_caffe_bgr_segmenter_predicts_in_its_convention_and_fuses_as_asked(work, tmp_path):
    """The input convention comes with the model (its architecture id), the fusion from
    --fusion, as segmentation.inference_fusion in the predict stage."""
    torch.manual_seed(1)
    model = build_segmenter("small", NUM_CLASSES, input_normalisation="caffe_bgr").eval()
    save_model(tmp_path / "seg" / "model.pt", model, class_names=["background", "a", "b", "c"])
    scales = [1.0, 0.75, 0.5]
    for fusion in ("image", "logits"):
        out = tmp_path / fusion
        arguments = ["--model", tmp_path / "seg" / "model.pt", work / "images", "--out", out]
        arguments += ["--scales", *scales, "--fusion", fusion, "--device", "cpu"]
        assert main(list(map(str, arguments))) == 0
        for name in SIZES:
            images = normalize(read_image(work / "images" / name))[None]
            with Image.open(out / f"{name.rsplit('.', 1)[0]}.png") as written:
                expected = predict_labels(model, images, scales, fusion=fusion)[0]
                assert np.array_equal(np.array(written), expected), (fusion, name)
    assert any(
        (tmp_path / "image" / name).read_bytes() != (tmp_path / "logits" / name).read_bytes()
        for name in ("a.png", "b.png", "c.png")
    ), "the two fusions label these images differently"


def test_a_classifier_writes_cam_labels_and_overlays(work, tmp_path):
    result = _cli(
        "--model",
        work / "cls" / "model.pt",
        work / "images" / "a.jpg",
        work / "images" / "b.png",
        work / "images" / "c.jpeg",
        "--out",
        tmp_path,
        "--device",
        "cpu",
        "--cams",
    )
    assert result.returncode == 0, result.stderr
    _check_labels(tmp_path)
    for name, (height, width) in SIZES.items():
        with Image.open(tmp_path / f"{name.rsplit('.', 1)[0]}_cam.png") as overlay:
            assert overlay.mode == "RGB" and overlay.size == (width, height)


def test_a_bad_input_is_one_line_and_exit_1_from_the_command(work, tmp_path):
    result = _cli("--model", tmp_path / "nope.pt", work / "images", "--out", tmp_path / "out")
    assert result.returncode == 1
    assert result.stderr == f"i2crc error: {tmp_path / 'nope.pt'}: model file is missing\n"


def _error(capsys, *args):
    """The error line (after, at most, the progress bar it interrupted)."""
    assert main([*map(str, args), "--device", "cpu"]) == 1
    *bar, error, end = capsys.readouterr().err.split("\n")
    assert error.startswith("i2crc error: ") and end == "", error
    assert all(line.startswith("\rpredict:") for line in bar), bar
    return error


def test_a_model_without_its_sidecar(work, tmp_path, capsys):
    (tmp_path / "model.pt").write_bytes((work / "seg" / "model.pt").read_bytes())
    err = _error(capsys, "--model", tmp_path / "model.pt", work / "images", "--out", tmp_path / "o")
    assert "has no sidecar model.json beside it" in err


def test_an_unreadable_image(work, tmp_path, capsys):
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    err = _error(
        capsys,
        "--model",
        work / "seg" / "model.pt",
        tmp_path / "broken.jpg",
        "--out",
        tmp_path / "o",
    )
    assert f"{tmp_path / 'broken.jpg'}: image file is unreadable or corrupt" in err


def test_an_empty_folder_a_missing_input_cams_of_a_segmenter_and_crf_of_a_classifier(
    work, tmp_path, capsys
):
    (tmp_path / "empty").mkdir()
    model = work / "seg" / "model.pt"
    assert "empty: folder has no images" in _error(
        capsys, "--model", model, tmp_path / "empty", "--out", tmp_path / "o"
    )
    assert "nothing.jpg: no such image file or folder" in _error(
        capsys, "--model", model, tmp_path / "nothing.jpg", "--out", tmp_path / "o"
    )
    assert "--cams needs a classifier model" in _error(
        capsys, "--model", model, work / "images", "--out", tmp_path / "o", "--cams"
    )
    classifier = ["--model", work / "cls" / "model.pt", work / "images", "--out", tmp_path / "o"]
    for option in (["--crf"], ["--fusion", "logits"]):
        assert f"{option[0]} needs a segmenter model, this is a classifier" in _error(
            capsys, *classifier, *option
        )
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("scale", ["0", "nan", "-1", "inf"])
def test_a_scale_that_is_not_a_positive_number_is_refused_before_anything_else(
    work, tmp_path, capsys, scale
):
    err = _error(
        capsys,
        "--model",
        tmp_path / "not-read.pt",
        work / "images",
        "--out",
        tmp_path / "o",
        "--scales",
        "1.0",
        scale,
    )
    assert err == f"i2crc error: option --scales: {float(scale)} is not a positive finite number"
    assert not (tmp_path / "o").exists()


def test_a_scale_that_leaves_an_image_without_output_pixels_is_refused_before_predicting(
    work, tmp_path, capsys
):
    err = _error(
        capsys,
        "--model",
        work / "seg" / "model.pt",
        work / "images",
        "--out",
        tmp_path / "o",
        "--scales",
        "0.001",
    )
    assert err == (
        f"i2crc error: option --scales: scale 0.001 makes the 40-pixel side of "
        f"{work / 'images' / 'a.jpg'} 0 pixels, fewer than the networks' output "
        "stride of 8"
    )
    assert not (tmp_path / "o").exists()


def test_an_out_that_is_a_file_or_below_one_is_refused_before_predicting(work, tmp_path, capsys):
    model = work / "seg" / "model.pt"
    (tmp_path / "taken").write_text("a file")
    assert _error(capsys, "--model", model, work / "images", "--out", tmp_path / "taken") == (
        f"i2crc error: option --out: {tmp_path / 'taken'} is a file; give a folder"
    )
    below = tmp_path / "taken" / "sub" / "dir"
    assert _error(capsys, "--model", model, work / "images", "--out", below) == (
        f"i2crc error: option --out: {below} is below {tmp_path / 'taken'}, a file; give a folder"
    )
    assert (tmp_path / "taken").read_text() == "a file"


def test_an_out_in_a_read_only_folder_is_refused_before_predicting(work, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    if os.access(locked, os.W_OK):
        pytest.skip("this user (root) can write in a read-only folder")
    err = _error(
        capsys, "--model", work / "seg" / "model.pt", work / "images", "--out", locked / "o"
    )
    assert err == f"i2crc error: option --out: cannot write in the folder {locked}"


def test_cuda_without_usable_cuda_names_the_option_not_a_config_key(
    work, tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr(device, "cuda_problem", lambda: "no GPU here (simulated)")
    assert (
        main(
            [
                "--model",
                str(work / "seg" / "model.pt"),
                str(work / "images"),
                "--out",
                str(tmp_path / "o"),
                "--device",
                "cuda",
            ]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert err.startswith(
        "i2crc error: option --device: 'cuda' requested but CUDA is unusable: "
        'no GPU here (simulated) (docs/gpu.md §"Drivers and wheels")'
    )
    assert err.count("\n") == 1 and "config key" not in err


def _with_sidecar(work, tmp_path, kind, edit):
    """A copy of the `kind` model ("seg" or "cls") whose sidecar `edit(sidecar)` returns."""
    folder = tmp_path / f"edited_{kind}"
    folder.mkdir()
    (folder / "model.pt").write_bytes((work / kind / "model.pt").read_bytes())
    sidecar = json.loads((work / kind / "model.json").read_text())
    (folder / "model.json").write_text(json.dumps(edit(sidecar)))
    return folder / "model.pt"


@pytest.mark.parametrize(
    ("kind", "claimed", "extra"),
    [("seg", "classifier", []), ("seg", "classifier", ["--cams"]), ("cls", "segmenter", [])],
)
def test_a_sidecar_that_lies_about_the_kind_is_refused_not_believed(
    work, tmp_path, capsys, kind, claimed, extra
):
    model = _with_sidecar(work, tmp_path, kind, lambda sidecar: {**sidecar, "kind": claimed})
    actual = "segmenter" if kind == "seg" else "classifier"
    err = _error(capsys, "--model", model, work / "images", "--out", tmp_path / "o", *extra)
    assert err.startswith(
        f"i2crc error: {model.with_suffix('.json')}: model sidecar says kind '{claimed}' but "
        f"architecture '{actual}/small/classes={NUM_CLASSES}"
    )
    assert not (tmp_path / "o").exists()


def test_a_sidecar_whose_architecture_lies_too_is_refused_by_the_model_file(work, tmp_path, capsys):
    claimed = f"classifier/small/classes={NUM_CLASSES}"
    model = _with_sidecar(
        work,
        tmp_path,
        "seg",
        lambda sidecar: {**sidecar, "kind": "classifier", "architecture": claimed},
    )
    held = json.loads((work / "seg" / "model.json").read_text())["architecture"]
    err = _error(capsys, "--model", model, work / "images", "--out", tmp_path / "o")
    assert err == f"i2crc error: {model}: holds a {held} model, expected a classifier"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda sidecar: [sidecar], "model sidecar is a list, not an object"),
        (
            lambda sidecar: {k: v for k, v in sidecar.items() if k != "kind"},
            "model sidecar has no 'kind'",
        ),
        (
            lambda sidecar: {**sidecar, "input": "RGB"},
            "model sidecar's 'input' is a string, expected an object",
        ),
        (
            lambda sidecar: {**sidecar, "input": {"training_size": "big"}},
            "model sidecar's 'input.training_size' is a string, expected a number or null",
        ),
        (
            lambda sidecar: {**sidecar, "trained_on": "shapes"},
            "model sidecar's 'trained_on' is a string, expected an object or null",
        ),
        (
            lambda sidecar: {**sidecar, "class_names": [1, 2, 3, 4]},
            "model sidecar's 'class_names' are not all strings",
        ),
        (
            lambda sidecar: {**sidecar, "class_names": ["background", "cat"]},
            f"names 2 classes, but the model has {NUM_CLASSES + 1} (background and "
            f"{NUM_CLASSES} objects)",
        ),
    ],
    ids=[
        "a-list",
        "no-kind",
        "input-a-string",
        "training-size-a-string",
        "trained-on-a-string",
        "class-names-not-strings",
        "class-names-of-another-length",
    ],
)
def test_a_sidecar_with_a_missing_key_or_a_wrong_type_is_one_line(
    work, tmp_path, capsys, edit, message
):
    model = _with_sidecar(work, tmp_path, "seg", edit)
    err = _error(capsys, "--model", model, work / "images", "--out", tmp_path / "o")
    assert err == f"i2crc error: {model.with_suffix('.json')}: {message}"


def test_a_photo_with_an_exif_orientation_gets_a_mask_of_the_displayed_image(work, tmp_path):
    """Stored 80 wide and 40 high with orientation 6, shown 40 wide and 80 high: the mask is the
    one of the image turned by hand, pixel for pixel."""
    rng = np.random.default_rng(3)
    stored = rng.integers(0, 256, (40, 80, 3), dtype=np.uint8)
    turned_jpeg(tmp_path / "in" / "phone.jpg", stored)
    with Image.open(tmp_path / "in" / "phone.jpg") as image:
        shown = np.array(ImageOps.exif_transpose(image))
    assert shown.shape == (80, 40, 3)
    Image.fromarray(shown).save(tmp_path / "upright.png")
    model = work / "seg" / "model.pt"
    for source, out in [(tmp_path / "in" / "phone.jpg", "o1"), (tmp_path / "upright.png", "o2")]:
        result = _cli("--model", model, source, "--out", tmp_path / out, "--device", "cpu")
        assert result.returncode == 0, result.stderr
    with (
        Image.open(tmp_path / "o1" / "phone.png") as mask,
        Image.open(tmp_path / "o2" / "upright.png") as expected,
    ):
        assert mask.size == (40, 80)
        np.testing.assert_array_equal(np.array(mask), np.array(expected))


def test_a_decompression_bomb_is_one_line_naming_it(work, tmp_path, capsys):
    bomb = bomb_png(tmp_path / "in" / "huge.png")
    err = _error(capsys, "--model", work / "seg" / "model.pt", bomb, "--out", tmp_path / "o")
    assert err == (
        f"i2crc error: {bomb}: image file of 900 megapixels is larger than the limit of 179 "
        "megapixels (Pillow's guard against decompression bombs)"
    )


def test_an_image_too_small_for_the_network_blames_the_image_not_an_option(work, tmp_path, capsys):
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(tmp_path / "dot.png")
    err = _error(
        capsys, "--model", work / "seg" / "model.pt", tmp_path / "dot.png", "--out", tmp_path / "o"
    )
    assert err == (
        f"i2crc error: {tmp_path / 'dot.png'}: image of 1x1 pixels is smaller than the networks' "
        "output stride of 8 pixels on a side"
    )
