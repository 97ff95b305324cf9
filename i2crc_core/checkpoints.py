"""Model files and resumable training checkpoints.

Both are written atomically and carry the model's architecture id, so loading a file made for
another architecture, or a corrupt file, is a clear `CheckpointError` rather than a shape
mismatch deep inside PyTorch.

Format: a `torch.save`d dict of plain data only, read back with `weights_only=True`, so a file
from someone else can never run code when loaded (a pickled payload is refused). A model file
(`model.pt`) holds "architecture" (e.g. "segmenter/resnet101/classes=20/aspp=6-12-18-24"),
"model" (the state dict) and the training settings ("training", "losses"); a checkpoint adds
"run_id", "step", "optimizer", "scheduler" and "scaler" state dicts.
"""

import logging
import re
from pathlib import Path

import torch

from . import torchfile
from .errors import CheckpointError
from .fileio import atomic_path
from .models import architecture_id, build_from_architecture_id

log = logging.getLogger(__name__)

_CHECKPOINT_NAME = re.compile(r"^step_(\d+)\.pt$")


def _save(path, payload: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def _load(path) -> dict:
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: file is missing")
    payload = torchfile.load(path)
    if not isinstance(payload, dict) or "architecture" not in payload or "model" not in payload:
        raise CheckpointError(f"{path}: not an i2crc checkpoint (no architecture/model entries)")
    return payload


def save_model(path, model: torch.nn.Module, **metadata) -> None:
    _save(path, {"architecture": architecture_id(model), "model": model.state_dict(), **metadata})


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


def save_checkpoint(directory, step: int, run_id: str, model, optimizer, scheduler, scaler) -> Path:
    """Save training state after `step` completed chunks; older checkpoints are removed."""
    directory = Path(directory)
    path = directory / f"step_{step:06d}.pt"
    _save(
        path,
        {
            "architecture": architecture_id(model),
            "run_id": run_id,
            "step": step,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict(),
        },
    )
    for older in directory.glob("step_*.pt"):
        if older != path:
            older.unlink()
    return path


def resume(directory, run_id: str, model, optimizer, scheduler, scaler) -> int:
    """Restore the newest checkpoint of this run; return the number of completed chunks.

    A checkpoint from a run with other settings (another `run_id`) or another architecture is
    not resumed: training starts over, and says so in the log.
    """
    directory = Path(directory)
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
    if payload.get("run_id") != run_id or payload["architecture"] != architecture_id(model):
        log.warning("%s: made with other settings; training starts from scratch", path)
        return 0
    try:
        model.load_state_dict(payload["model"])
        optimizer.load_state_dict(payload["optimizer"])
        scheduler.load_state_dict(payload["scheduler"])
        if scaler.is_enabled():
            scaler.load_state_dict(payload["scaler"])
    except (RuntimeError, ValueError, KeyError) as error:
        raise CheckpointError(f"{path}: cannot be resumed ({error})") from None
    log.info("resumed from %s (step %d)", path, step)
    return step
