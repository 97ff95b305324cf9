"""Reading `torch.save` files without trusting them.

Model files, checkpoints and ImageNet weights are loaded with `weights_only=True`: tensors and
plain data only, so a shared file cannot run code when it is loaded. Every way a file can
fail becomes one `CheckpointError` line naming it (torch's own messages span many lines).
"""

import pickle

import torch

from ..infra.errors import CheckpointError


def load(path, what: str = "checkpoint"):
    """The object saved in `path`, read on the CPU; `what` names the kind of file in errors."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        code = [line.strip() for line in str(error).splitlines() if "GLOBAL" in line.upper()]
        if not code:
            # No pickle that torch.save writes: random bytes, or a file of another format.
            raise CheckpointError(
                f"{path}: not a readable {what}: not a torch.save file, as this pipeline's "
                f"models and checkpoints are ({_reason(error)})"
            ) from None
        raise CheckpointError(
            f"{path}: refused: it holds objects other than tensors and plain data, which could "
            f"run code when loaded ({code[0]})"
        ) from None
    except Exception as error:  # torch raises many types for a damaged file
        raise CheckpointError(f"{path}: not a readable {what} ({_reason(error)})") from None


def _reason(error: Exception) -> str:
    """The first line of torch's message that says what is wrong with the file. Never its
    advice to retry with `weights_only=False`: that would run whatever code the file holds."""
    text = str(error)
    _, marker, detail = text.partition("WeightsUnpickler error:")
    lines = [line.strip() for line in (detail if marker else text).splitlines()]
    lines = [line for line in lines if line and "weights_only" not in line]
    return lines[0] if lines else type(error).__name__
