"""What classifier and segmentation training share: optimisers, seeding, the optimisation
step, loss logging with divergence checks, and a resumable loop over checkpointed chunks.

Training is cut into chunks (an epoch for the classifier, `checkpoint_every` iterations for
the segmenter). Each chunk starts by seeding every random generator from (seed, chunk), and a
checkpoint is saved after it. A run resumed after chunk k therefore replays exactly what an
uninterrupted run would have done from chunk k+1 on.

A step never waits for the GPU: loss values stay on the device, summed there, and are read
(one synchronisation) every LOG_INTERVAL steps and at the end of a chunk, which is also when a
non-finite loss is noticed and reported with the step where it first appeared. (fp16 is the
exception: its GradScaler reads an overflow flag in every step.)
"""

import hashlib
import json
import logging
import random

import numpy as np
import torch

from .checkpoints import resume, save_checkpoint
from .errors import TrainingError

log = logging.getLogger(__name__)

LOG_INTERVAL = 50


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


def optimisation_step(loss: torch.Tensor, optimizer, scaler: torch.amp.GradScaler) -> None:
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()


class LossLog:
    """Loss values of a chunk, summed on the device and read every LOG_INTERVAL steps."""

    def __init__(self, names, device: torch.device, where):
        """`where(step)` names a step (0-based) in an error message, e.g. "epoch 3, iteration 7"."""
        self.names = tuple(names)
        self.where = where
        self.total = torch.zeros(len(self.names), dtype=torch.float64, device=device)
        self.steps = 0
        self.first_bad_step = torch.full((), -1, dtype=torch.int64, device=device)
        self.first_bad_value = torch.zeros((), device=device)

    def add(self, values: torch.Tensor) -> None:
        """Add one step's values (the total loss first); reads them every LOG_INTERVAL steps."""
        values = values.detach().reshape(-1)
        bad = ~torch.isfinite(values[0]) & (self.first_bad_step < 0)
        self.first_bad_step = torch.where(bad, self.steps, self.first_bad_step)
        self.first_bad_value = torch.where(bad, values[0].float(), self.first_bad_value)
        self.total += values.double()
        self.steps += 1
        if self.steps % LOG_INTERVAL == 0:
            self.check()

    def check(self) -> None:
        """Raise TrainingError if a step so far had a non-finite loss."""
        step = int(self.first_bad_step)
        if step >= 0:
            raise TrainingError(
                f"training diverged at {self.where(step)}: loss is {self.first_bad_value.item()}; "
                "lower the learning rate or the loss weights"
            )

    def means(self) -> dict[str, float]:
        """Checked means over the chunk's steps."""
        self.check()
        totals = self.total.tolist()
        return {name: round(value / max(self.steps, 1), 5) for name, value in zip(self.names, totals)}


def train_in_chunks(*, num_chunks, run_chunk, model, optimizer, scheduler, scaler,
                    checkpoint_dir, run_key: str, seed: int) -> None:
    """Run `run_chunk(chunk)` for every chunk not yet checkpointed, checkpointing after each."""
    start = resume(checkpoint_dir, run_key, model, optimizer, scheduler, scaler)
    for chunk in range(start, num_chunks):
        seed_everything(chunk_seed(seed, chunk))
        model.train()
        run_chunk(chunk)
        save_checkpoint(checkpoint_dir, chunk + 1, run_key, model, optimizer, scheduler, scaler)
