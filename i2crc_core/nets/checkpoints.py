"""Model files and resumable training checkpoints.

Both are written atomically and carry the model's architecture id, so loading a file made for
another architecture, or a corrupt file, is a clear `CheckpointError` rather than a shape
mismatch deep inside PyTorch.

Format: a `torch.save`d dict of plain data only, read back with `weights_only=True`, so a file
from someone else can never run code when loaded (a pickled payload is refused). A model file
(`model.pt`) holds "architecture" (e.g. "segmenter/resnet101/classes=20/aspp=6-12-18-24"),
"model" (the state dict) and the training settings ("training", "loss_weights"); a checkpoint adds
"run_id", "step" and the state dict of every part of the training state (model, optimizer,
scheduler, scaler, loss curve).

A model file gets a JSON sidecar beside it (`model.json`, see `describe_model`) so that it can
be used without this pipeline's config: what the network is, what its outputs mean, how to
normalise its input, and what it was trained on.

A write that fails (disk full, quota) is one `StorageError` line (fileio.atomic_path) and
leaves no file behind; an older checkpoint is removed only once the newer one is complete.
"""

import logging
import re
from pathlib import Path

import torch

from ..data.datasets import IMAGENET_MEAN, IMAGENET_STD
from ..infra.errors import CheckpointError
from ..infra.fileio import atomic_path, write_json
from . import torchfile
from .models import Segmenter, architecture_id, build_from_architecture_id

log = logging.getLogger(__name__)

_CHECKPOINT_NAME = re.compile(r"^step_(\d+)\.pt$")
SIDECAR_FORMAT = "i2crc-model/1"


def _save(path, payload: dict) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as file:
        # Saving to an open file, not a path, makes a failed write the OSError behind torch's
        # RuntimeError (a path gives only "unexpected pos"); atomic_path turns a full disk into
        # its one-line StorageError.
        try:
            torch.save(payload, file)
        except RuntimeError as error:
            if isinstance(error.__context__, OSError):
                raise error.__context__ from None
            raise


def _load(path) -> dict:
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: file is missing")
    payload = torchfile.load(path)
    if not isinstance(payload, dict) or "architecture" not in payload or "model" not in payload:
        raise CheckpointError(f"{path}: not an i2crc checkpoint (no architecture/model entries)")
    return payload


def sidecar_path(model_path) -> Path:
    return Path(model_path).with_suffix(".json")


def describe_model(
    model: torch.nn.Module, *, class_names=None, input_size=None, trained_on=None, **metadata
) -> dict:
    """The sidecar's content: plain JSON data about the model, for use outside the pipeline."""
    segmenter = isinstance(model, Segmenter)
    names = list(class_names) if class_names is not None else None
    description = {
        "format": SIDECAR_FORMAT,
        "architecture": architecture_id(model),
        "kind": "segmenter" if segmenter else "classifier",
        "backbone": model.backbone_name,
        "num_classes": model.num_classes,
        "class_names": names,
        "output": (
            f"logits (N, {model.num_classes + 1}, H, W) at input size; label = argmax, "
            "0 = background, c = class_names[c]"
            if segmenter
            else f"attention maps F (N, {model.num_classes}, H/8, W/8); channel c-1 = class c = "
            "class_names[c]; image score = mean over H, W; CAM = ReLU(F_c) / max"
        ),
        "input": {
            "channels": "RGB",
            "normalisation": "x / 255, then (x - mean) / std per channel",
            "mean": list(IMAGENET_MEAN),
            "std": list(IMAGENET_STD),
            "training_size": input_size,
        },
        "trained_on": trained_on,
        **metadata,
    }
    if segmenter:
        description["aspp_rates"] = list(model.aspp_rates)
    return description


def save_model(
    path,
    model: torch.nn.Module,
    *,
    class_names=None,
    input_size=None,
    trained_on=None,
    provenance=None,
    **metadata,
) -> None:
    """The model file and its sidecar; `metadata` (training settings, losses) goes in both,
    `provenance` (what process trained it) in the sidecar only: the model file stays a
    function of the training alone.

    The sidecar is written first, so a model file never lacks one."""
    description = describe_model(
        model, class_names=class_names, input_size=input_size, trained_on=trained_on, **metadata
    )
    if provenance is not None:
        description["provenance"] = provenance
    write_json(sidecar_path(path), description)
    _save(path, {"architecture": architecture_id(model), "model": model.state_dict(), **metadata})


def save_backbone(path, model: torch.nn.Module) -> None:
    """The state dict of `model.backbone` alone, the form backbone weights are loaded from
    (`models._load_backbone_weights`)."""
    _save(path, model.backbone.state_dict())


def load_model(path, device: torch.device, expected_kind: str | None = None) -> torch.nn.Module:
    """Rebuild the model a file was saved from; `expected_kind` is "classifier" or "segmenter"."""
    payload = _load(path)
    architecture = payload["architecture"]
    if expected_kind and not architecture.startswith(expected_kind + "/"):
        raise CheckpointError(f"{path}: holds a {architecture} model, expected a {expected_kind}")
    model = build_from_architecture_id(architecture)
    try:
        model.load_state_dict(payload["model"])
    except RuntimeError as error:
        raise CheckpointError(f"{path}: weights do not fit {architecture} ({error})") from None
    return model.to(device).eval()


def save_checkpoint(directory, step: int, run_id: str, state: dict) -> Path:
    """Save training state after `step` completed chunks in `directory/<run_id>/`; the run's
    older checkpoints are removed, never another run's (other settings: kept until deleted
    by hand).

    `state`: name -> object with `state_dict()` / `load_state_dict()`, "model" among them."""
    directory = Path(directory) / run_id
    path = directory / f"step_{step:06d}.pt"
    _save(
        path,
        {
            "architecture": architecture_id(state["model"]),
            "run_id": run_id,
            "step": step,
            **{name: part.state_dict() for name, part in state.items()},
        },
    )
    for older in directory.glob("step_*.pt"):
        if older != path:
            older.unlink()
    return path


def resume(directory, run_id: str, state: dict) -> int:
    """Restore the newest checkpoint of this run into `state` (as for `save_checkpoint`);
    return the number of completed chunks.

    Only this run's checkpoints (`directory/<run_id>/`) are looked at. One of another
    architecture, or without every part of `state` (an older version's), is not resumed:
    training starts over, and says so in the log. A part saved empty (a disabled GradScaler's,
    when the run changed precision) is left as it is.
    """
    directory = Path(directory) / run_id
    found = sorted(
        (int(match.group(1)), path)
        for path in directory.glob("step_*.pt")
        if (match := _CHECKPOINT_NAME.match(path.name))
    )
    if not found:
        return 0
    step, path = found[-1]
    try:
        payload = _load(path)
    except CheckpointError as error:
        raise CheckpointError(f"{error}; delete it to restart training from scratch") from None
    if (
        payload.get("run_id") != run_id
        or payload["architecture"] != architecture_id(state["model"])
        or not state.keys() <= payload.keys()
    ):
        log.warning("%s: made with other settings; training starts from scratch", path)
        return 0
    try:
        for name, part in state.items():
            if payload[name] != {}:  # a disabled GradScaler ignores a state, an enabled one
                part.load_state_dict(payload[name])  # needs a non-empty one
    except (RuntimeError, ValueError, KeyError) as error:
        raise CheckpointError(f"{path}: cannot be resumed ({error})") from None
    log.info("resumed from %s (step %d)", path, step)
    return step
