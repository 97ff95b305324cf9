"""Reading `torch.save` files without trusting them.

Model files, checkpoints and ImageNet weights are loaded with `weights_only=True`: tensors and
plain data only, so a shared file cannot run code when it is loaded. Every way a file can
fail becomes one `CheckpointError` line naming it (torch's own messages span many lines).
"""

import pickle

import torch

from .errors import CheckpointError


def load(path, what: str = "checkpoint"):
    """The object saved in `path`, read on the CPU; `what` names the kind of file in errors."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        code = [line.strip() for line in str(error).splitlines() if "GLOBAL" in line.upper()]
        if not code:
            raise CheckpointError(f"{path}: not a readable {what} ({_first_line(error)})") from None
        raise CheckpointError(
            f"{path}: refused: it holds objects other than tensors and plain data, which could "
            f"run code when loaded ({code[0]})"
        ) from None
    except Exception as error:  # torch raises many types for a damaged file
        raise CheckpointError(f"{path}: not a readable {what} ({_first_line(error)})") from None


def _first_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__
