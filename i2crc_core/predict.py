"""Use a trained model on any images, outside the pipeline.

    python -m i2crc_core.predict --model results/seed0/i2crc/segmentation/refined/model.pt \
        photos/ extra.jpg --out predictions [--device auto|cpu|cuda] [--scales 1.0 0.75] [--cams] \
        [--crf] [--fusion image|logits]

A segmenter writes `<out>/<name>.png`: its labels as a VOC palette PNG (0 background, c =
class c of the sidecar's `class_names`), logits of several scales fused by their maximum (at
the image's size, or with `--fusion logits` at the largest scale's logits, as the predict stage
does with segmentation.inference_fusion), with `--crf` refined by the dense CRF at the config
schema's `segmentation.crf` parameters (needs `pip install -e '.[crf]'`). A classifier writes
the same kind of PNG from its CAMs (the CAM-only rule of the evaluation: the classes whose score
q_c is positive, background where their largest CAM is below `--bg-threshold`), and with
`--cams` also `<out>/<name>_cam.png`, the image under its largest CAM. Folders are read one
level deep. Images are taken as a viewer shows them: a photo's EXIF orientation is applied, and
its PNG is of the displayed size, aligned with the displayed image (the pipeline's datasets keep
their stored pixels, on which their masks are drawn). A user mistake is one line
`i2crc error: ...` and exit 1.

It first says what the model is and what it was trained on, and warns when the images' size is
far from its training images' (e.g. a model of the 64-pixel synthetic benchmark on photos): a
model labels any image with its own classes, however unlike its training data the image is.
"""

import argparse
import json
import logging
import math
import os
import sys
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .data.layout import VocLayout
from .infra.config import defaults
from .infra.errors import CheckpointError, ConfigError, DatasetError, I2CRCError
from .infra.fileio import atomic_path, displayed_size, path_in, read_image, write_label
from .method.crf import DenseCRF, require_pydensecrf, settings
from .nets.cams import compute_cams_batch
from .nets.checkpoints import load_model, sidecar_path
from .nets.device import prepare_model, resolve_precision, select_device
from .nets.inference import FUSIONS, check_scales, infer_images, predict_labels
from .nets.models import architecture_id
from .report.plotting import cam_overlay

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
MAX_LOADER_WORKERS = 4
# Images whose median longer side is this many times larger or smaller than the model's
# training size get a warning (VOC models see photos within 2x of their crops).
SIZE_RATIO_WARNING = 4.0


class _Files(VocLayout):
    """Image files named by the user, as a layout whose image ids are output names, each image
    as it is displayed (its EXIF orientation applied: a user sees a phone's photo upright, and
    its mask should lie on it). Each header is read once: the scale check, the size warning and
    the batching all ask."""

    def __init__(self, paths: dict[str, Path]):  # no dataset root: every path is given
        self.paths = paths
        self._sizes: dict[str, tuple[int, int]] = {}

    def image_path(self, image_id: str) -> Path:
        return self.paths[image_id]

    def image_size(self, image_id: str) -> tuple[int, int]:
        if image_id not in self._sizes:
            self._sizes[image_id] = displayed_size(*self.image_header(image_id))
        return self._sizes[image_id]

    def read_image(self, image_id: str) -> np.ndarray:
        return read_image(self.image_path(image_id), displayed=True)


def image_files(inputs) -> dict[str, Path]:
    """Output name -> image path, for files and the images directly inside folders."""
    files = {}
    for given in map(Path, inputs):
        if given.is_dir():
            found = sorted(p for p in given.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise DatasetError(f"{given}: folder has no images ({', '.join(IMAGE_SUFFIXES)})")
        elif given.is_file():
            found = [given]
        else:
            raise DatasetError(f"{given}: no such image file or folder")
        for path in found:
            if path.stem in files and files[path.stem] != path:
                raise DatasetError(
                    f"{path}: would write the same output as {files[path.stem]} (same name)"
                )
            files[path.stem] = path
    return files


def read_sidecar(model_path) -> dict:
    model_path = Path(model_path)
    path = sidecar_path(model_path)
    if not model_path.is_file():
        raise CheckpointError(f"{model_path}: model file is missing")
    try:
        sidecar = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(
            f"{model_path}: has no sidecar {path.name} beside it (the pipeline writes one with "
            "every model; copy it along with the model)"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{path}: model sidecar is not valid JSON ({error})") from None
    check_sidecar(sidecar, path)
    return sidecar


# What this command reads from a sidecar, and as what (checkpoints.describe_model writes them).
_SIDECAR_KEYS = {"kind": str, "architecture": str, "class_names": list, "input": dict}
_JSON_NAMES = {dict: "an object", list: "a list", str: "a string", bool: "true or false"}


def _json_kind(value) -> str:
    if value is None:
        return "null"
    return _JSON_NAMES.get(type(value), "a number")


def check_sidecar(sidecar, path) -> None:
    """CheckpointError naming the sidecar and the key unless it holds what `run` reads, of the
    types it reads them as: a sidecar edited by hand (or of another program) would otherwise end
    in a KeyError or TypeError, or be believed."""
    if not isinstance(sidecar, dict):
        raise CheckpointError(f"{path}: model sidecar is {_json_kind(sidecar)}, not an object")
    for key, kind in _SIDECAR_KEYS.items():
        if key not in sidecar:
            raise CheckpointError(f"{path}: model sidecar has no '{key}'")
        if not isinstance(sidecar[key], kind):
            raise CheckpointError(
                f"{path}: model sidecar's '{key}' is {_json_kind(sidecar[key])}, "
                f"expected {_JSON_NAMES[kind]}"
            )
    if sidecar["kind"] not in ("segmenter", "classifier"):
        raise CheckpointError(
            f"{path}: model sidecar's 'kind' is {sidecar['kind']!r}, expected 'segmenter' or "
            "'classifier'"
        )
    if sidecar["architecture"].split("/")[0] != sidecar["kind"]:
        raise CheckpointError(
            f"{path}: model sidecar says kind {sidecar['kind']!r} but architecture "
            f"{sidecar['architecture']!r}"
        )
    if not all(isinstance(name, str) for name in sidecar["class_names"]):
        raise CheckpointError(f"{path}: model sidecar's 'class_names' are not all strings")
    size = sidecar["input"].get("training_size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, (int, float))):
        raise CheckpointError(
            f"{path}: model sidecar's 'input.training_size' is {_json_kind(size)}, expected a "
            "number or null"
        )
    if not isinstance(sidecar.get("trained_on") or {}, dict):
        raise CheckpointError(
            f"{path}: model sidecar's 'trained_on' is {_json_kind(sidecar['trained_on'])}, "
            "expected an object or null"
        )


def cam_labels(cams: np.ndarray, class_ids, threshold: float) -> np.ndarray:
    """uint8 (H, W): the class of the largest CAM, background where it is below `threshold`."""
    strongest = cams.argmax(axis=0)
    labels = np.asarray(class_ids, dtype=np.uint8)[strongest]
    return np.where(cams.max(axis=0) < threshold, 0, labels).astype(np.uint8)


def present_classes(model, images: torch.Tensor) -> list[list[int]]:
    """Per image, the classes (1-based) whose score q_c > 0 (probability > 0.5); the best
    scoring one when none is."""
    with torch.inference_mode():
        scores = model(images).float().mean(dim=(2, 3)).cpu()
    return [
        (torch.nonzero(row > 0).flatten() + 1).tolist() or [int(row.argmax()) + 1] for row in scores
    ]


def model_summary(sidecar: dict) -> str:
    """What the model is and what it learned from, in one line."""
    trained_on = sidecar.get("trained_on") or {}
    size = sidecar["input"].get("training_size")
    return (
        f"{sidecar['kind']} trained on {trained_on.get('images', 'an unknown number of')} "
        f"images of {trained_on.get('dataset', 'an unknown dataset')}"
        f"{f' at {size} px' if size else ''}; classes: {', '.join(sidecar['class_names'][1:])}"
    )


def size_warning(sidecar: dict, sizes) -> str | None:
    """A warning when the images' median longer side is far from the model's training size."""
    trained = sidecar["input"].get("training_size")
    side = float(np.median([max(size) for size in sizes]))
    if not trained or 1 / SIZE_RATIO_WARNING <= side / trained <= SIZE_RATIO_WARNING:
        return None
    return (
        f"warning: these images (median longer side {side:.0f} px) are {side / trained:.1f}x "
        f"the size of the model's training images ({trained} px): a model labels any image "
        "with its own classes, and images unlike its training data get labels that mean little"
    )


def check_out_dir(out_dir: Path) -> None:
    """ConfigError unless `out_dir` is a folder this process can write in, or can make: checked
    up front, since the writes would fail only after predicting, and with a traceback."""
    existing = out_dir
    while not existing.exists():  # also false below a file
        existing = existing.parent
    if not existing.is_dir():
        what = "is a file" if existing == out_dir else f"is below {existing}, a file"
        raise ConfigError(f"option --out: {out_dir} {what}; give a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"option --out: cannot write in the folder {existing}")


def run(*, model_path, inputs, out_dir, device, scales, cams, bg_threshold, crf, fusion):
    bad = [scale for scale in scales if not (math.isfinite(scale) and scale > 0)]
    if bad:
        raise ConfigError(f"option --scales: {bad[0]} is not a positive finite number")
    out_dir = Path(out_dir)
    check_out_dir(out_dir)
    sidecar = read_sidecar(model_path)
    files = image_files(inputs)
    layout = _Files(files)
    check_scales(scales, layout, list(files), "option --scales")
    device = select_device(device, "option --device")
    # The sidecar's kind and architecture decide how the outputs are read: the model file must
    # hold that architecture, whose state dict then loads strictly (every key and shape).
    model = load_model(model_path, device, expected_kind=sidecar["kind"])
    if sidecar["architecture"] != architecture_id(model):
        raise CheckpointError(
            f"{sidecar_path(model_path)}: describes a {sidecar['architecture']} model, but "
            f"{model_path} holds a {architecture_id(model)}"
        )
    if len(sidecar["class_names"]) != model.num_classes + 1:
        raise CheckpointError(
            f"{sidecar_path(model_path)}: names {len(sidecar['class_names'])} classes, but the "
            f"model has {model.num_classes + 1} (background and {model.num_classes} objects)"
        )
    model = prepare_model(model, device, training=False)
    segmenter = sidecar["kind"] == "segmenter"
    if cams and segmenter:
        raise CheckpointError(f"{model_path}: --cams needs a classifier model, this is a segmenter")
    if crf and not segmenter:
        raise CheckpointError(f"{model_path}: --crf needs a segmenter model, this is a classifier")
    if fusion != "image" and not segmenter:
        raise CheckpointError(
            f"{model_path}: --fusion needs a segmenter model, this is a classifier"
        )
    if crf:
        require_pydensecrf("option --crf")
    workers = min(MAX_LOADER_WORKERS, os.cpu_count() or 1)
    refine = (
        DenseCRF(settings({**defaults()["segmentation"]["crf"], "enabled": True}), workers=workers)
        if crf
        else None
    )

    def infer(images):
        if segmenter:
            return predict_labels(model, images, scales, refine, fusion)
        class_ids = present_classes(model, images)
        return zip(compute_cams_batch(model, images, class_ids, scales=scales), class_ids)

    def write(name, output):
        if segmenter:
            write_label(path_in(out_dir, name, ".png"), output)
            return
        image_cams, class_ids = output
        write_label(path_in(out_dir, name, ".png"), cam_labels(image_cams, class_ids, bg_threshold))
        if cams:
            with atomic_path(path_in(out_dir, name, "_cam.png")) as tmp:
                overlay = cam_overlay(layout.read_image(name), image_cams.max(axis=0))
                Image.fromarray(overlay).save(tmp, format="PNG")

    print(f"model: {model_summary(sidecar)}", file=sys.stderr)
    warning = size_warning(sidecar, [layout.image_size(name) for name in files])
    if warning:
        print(warning, file=sys.stderr)
    with refine or nullcontext():
        infer_images(
            layout,
            list(files),
            infer,
            write,
            device=device,
            precision=resolve_precision("auto", device),
            threads=workers,
            desc="predict",
            mininterval=0.1,
        )
    print(f"{len(files)} images -> {out_dir}", file=sys.stderr)


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m i2crc_core.predict",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", required=True, help="model.pt (with model.json beside it)")
    parser.add_argument("inputs", nargs="+", metavar="IMAGE_OR_FOLDER")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument(
        "--scales",
        type=float,
        nargs="+",
        default=[1.0],
        help="inference scales, fused by max (default: 1.0)",
    )
    parser.add_argument(
        "--cams",
        action="store_true",
        help="classifier only: also write <name>_cam.png CAM overlays",
    )
    parser.add_argument(
        "--crf",
        action="store_true",
        help="segmenter only: refine the labels with the dense CRF (pip install -e '.[crf]')",
    )
    parser.add_argument(
        "--fusion",
        choices=FUSIONS,
        default="image",
        help="segmenter only: fuse the scales' logits at the image's size (default) or at the "
        "largest scale's logits (the VOC preset's segmentation.inference_fusion)",
    )
    parser.add_argument(
        "--bg-threshold",
        type=float,
        default=0.3,
        help="classifier only: background below this CAM value (default: 0.3)",
    )
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    try:
        run(
            model_path=args.model,
            inputs=args.inputs,
            out_dir=args.out,
            device=args.device,
            scales=args.scales,
            cams=args.cams,
            bg_threshold=args.bg_threshold,
            crf=args.crf,
            fusion=args.fusion,
        )
    except I2CRCError as error:
        print(f"i2crc error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
