"""What classifier and segmentation training share: device choice, optimisers, seeding,
divergence checks, and a resumable loop over checkpointed chunks of work.

Training is cut into chunks (an epoch for the classifier, `checkpoint_every` iterations for
the segmenter). Each chunk starts by seeding every random generator from (seed, chunk), and a
checkpoint is saved after it. A run resumed after chunk k therefore replays exactly what an
uninterrupted run would have done from chunk k+1 on.
"""

import contextlib
import hashlib
import json
import logging
import math
import random

import numpy as np
import torch

from .checkpoints import resume, save_checkpoint
from .errors import ConfigError, TrainingError

log = logging.getLogger(__name__)


def select_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("config key 'device': 'cuda' requested but no CUDA device is available")
    return torch.device(name)


def prepare_model(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """Move a model to `device`; on CUDA also channels-last memory and cuDNN autotuning.

    cuDNN autotuning picks the fastest kernels, which are not all deterministic: GPU runs
    are reproducible only approximately. On CPU nothing changes.
    """
    model = model.to(device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        model = model.to(memory_format=torch.channels_last)
    return model


def autocast(device: torch.device):
    """bf16 mixed precision on CUDA; full float32 on CPU."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def loader_options(device: torch.device, workers: int) -> dict:
    """DataLoader options: pinned memory and worker processes on CUDA, none on CPU, where
    batches are made in the training process so that augmentation follows the seeded RNG."""
    if device.type == "cuda":
        return {"num_workers": workers, "pin_memory": True, "persistent_workers": workers > 0}
    return {}


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def chunk_seed(seed: int, chunk: int) -> int:
    return seed * 1_000_003 + chunk


def run_id(**settings) -> str:
    """A stable id of everything that determines a training run's result."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def make_optimizer(name: str, param_groups, *, lr, momentum, weight_decay):
    """SGD uses the model's lr-multiplied groups (paper); Adam one plain group per the groups."""
    if name == "sgd":
        return torch.optim.SGD(param_groups, lr=lr, momentum=momentum, weight_decay=weight_decay)
    flat = [{"params": group["params"]} for group in param_groups]
    return torch.optim.Adam(flat, lr=lr, weight_decay=weight_decay)


def check_finite(loss: torch.Tensor, where: str) -> None:
    if not math.isfinite(loss.item()):
        raise TrainingError(
            f"training diverged at {where}: loss is {loss.item()}; lower the learning rate "
            "or the loss weights"
        )


def train_in_chunks(*, num_chunks, run_chunk, model, optimizer, scheduler, checkpoint_dir,
                    run_key: str, seed: int) -> None:
    """Run `run_chunk(chunk)` for every chunk not yet checkpointed, checkpointing after each."""
    start = resume(checkpoint_dir, run_key, model, optimizer, scheduler)
    for chunk in range(start, num_chunks):
        seed_everything(chunk_seed(seed, chunk))
        model.train()
        run_chunk(chunk)
        save_checkpoint(checkpoint_dir, chunk + 1, run_key, model, optimizer, scheduler)
