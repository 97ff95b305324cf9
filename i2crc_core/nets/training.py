"""What classifier and segmentation training share: the setup (device, precision, manifest,
seeded model, optimiser, loss scaler, chunk loader), the optimisation step, loss logging with
divergence checks and a loss curve, and a resumable loop over checkpointed chunks.

Training is cut into chunks (an epoch for the classifier, `checkpoint_every` iterations for
the segmenter). Each chunk starts by seeding every random generator from (seed, chunk), and a
checkpoint is saved after it. A run resumed after chunk k therefore replays exactly what an
uninterrupted run would have done from chunk k+1 on.

A step never waits for the GPU: loss values stay on the device, summed there, and are read
(one synchronisation) every LOG_INTERVAL steps and at the end of a chunk, which is also when a
non-finite loss is noticed and reported with the step where it first appeared. (fp16 is the
exception: its GradScaler reads an overflow flag in every step.) Per-image statistics
(`ImageMeans`) are summed on the device the same way and read at the end of a chunk.

The loss curve (`LossCurve`) is a TSV beside the model, rewritten at every row so that it can
be watched during training, plus TensorBoard event files when `tensorboard` is installed. Its
rows are part of the checkpointed state: a resumed run ends with exactly the rows of an
uninterrupted one.
"""

import csv
import hashlib
import json
import logging
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..data.loading import UserErrorLoader
from ..data.manifest import Manifest
from ..infra.errors import ConfigError, TrainingError
from ..infra.fileio import atomic_path, content_digest
from ..infra.provenance import collect as provenance
from .checkpoints import resume, save_checkpoint, save_model
from .device import (
    autocast,
    grad_scaler,
    main_process_threads,
    prepare_model,
    resolve_precision,
    select_device,
    set_torch_threads,
)
from .sampling import ChunkSampler, chunk_loader, chunk_seed

log = logging.getLogger(__name__)

LOG_INTERVAL = 50


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def run_id(**settings) -> str:
    """A stable id of everything that determines a training run's result."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def optimizer_for(model, settings: dict):
    """The optimiser a training section (`classifier`, `segmentation`, ...) names. SGD uses the
    model's groups at the section's `lr_multipliers`, with its momentum and Nesterov setting;
    Adam gives every group the base rate."""
    if settings["optimizer"] == "sgd":
        return torch.optim.SGD(
            model.param_groups(settings["lr"], **settings["lr_multipliers"]),
            lr=settings["lr"],
            momentum=settings["momentum"],
            nesterov=settings["nesterov"],
            weight_decay=settings["weight_decay"],
        )
    flat = [{"params": group["params"]} for group in model.param_groups(1.0, head=1, bias=1)]
    return torch.optim.Adam(flat, lr=settings["lr"], weight_decay=settings["weight_decay"])


def optimisation_step(loss: torch.Tensor, optimizer, scaler: torch.amp.GradScaler) -> None:
    accumulated_step([loss], optimizer, scaler)


def accumulated_step(losses, optimizer, scaler: torch.amp.GradScaler) -> torch.Tensor:
    """One optimiser step on the summed gradients of `losses`, an iterable that computes each
    micro-batch's loss (already divided by their number) only when asked for it: each is
    backpropagated before the next is computed, so one micro-batch's graph is in memory at a
    time. Returns the losses' sum, detached."""
    optimizer.zero_grad(set_to_none=True)
    total = []
    for loss in losses:
        scaler.scale(loss).backward()
        total.append(loss.detach())
    scaler.step(optimizer)
    scaler.update()
    return torch.stack(total).sum()


class LossLog:
    """Loss values of a chunk, summed on the device and read every LOG_INTERVAL steps and at
    the chunk's last step."""

    def __init__(self, names, device: torch.device, where, *, length=None, on_read=None):
        """`where(step)` names a step (0-based) in an error message, e.g. "epoch 3, iteration 7";
        `length`: the chunk's number of steps; `on_read(steps, means)` gets, at every read, the
        number of steps so far and the means over the steps since the previous read."""
        self.names = tuple(names)
        self.where = where
        self.length = length
        self.on_read = on_read
        self.total = torch.zeros(len(self.names), dtype=torch.float64, device=device)
        self.steps = 0
        self.first_bad_step = torch.full((), -1, dtype=torch.int64, device=device)
        self.first_bad_value = torch.zeros((), device=device)
        self.read_steps, self.read_total = 0, [0.0] * len(self.names)

    def add(self, values: torch.Tensor) -> None:
        """Add one step's values (the total loss first)."""
        values = values.detach().reshape(-1)
        bad = ~torch.isfinite(values[0]) & (self.first_bad_step < 0)
        self.first_bad_step = torch.where(bad, self.steps, self.first_bad_step)
        self.first_bad_value = torch.where(bad, values[0].float(), self.first_bad_value)
        self.total += values.double()
        self.steps += 1
        if self.steps % LOG_INTERVAL == 0 or self.steps == self.length:
            self.read()

    def check(self) -> None:
        """Raise TrainingError if a step so far had a non-finite loss."""
        step = int(self.first_bad_step)
        if step >= 0:
            raise TrainingError(
                f"training diverged at {self.where(step)}: loss is {self.first_bad_value.item()}; "
                "lower the learning rate or the loss weights"
            )

    def read(self) -> None:
        """Check the values and hand those since the previous read to `on_read`."""
        self.check()
        totals = self.total.tolist()
        count = self.steps - self.read_steps
        if self.on_read is not None and count:
            self.on_read(
                self.steps,
                {
                    name: round((now - before) / count, 5)
                    for name, now, before in zip(self.names, totals, self.read_total)
                },
            )
        self.read_steps, self.read_total = self.steps, totals

    def means(self) -> dict[str, float]:
        """Checked means over the chunk's steps."""
        self.read()
        return {
            name: round(value / max(self.steps, 1), 5)
            for name, value in zip(self.names, self.read_total)
        }


class ImageMeans:
    """Per-image statistics of a chunk, averaged over the images that define them: each step
    adds its (2, K) sums and image counts on the device, read once, by `means()`, at the chunk's
    end (the LossLog pattern; the divergence checks stay with the losses)."""

    def __init__(self, names, device: torch.device):
        self.names = tuple(names)
        self.total = torch.zeros(2, len(self.names), dtype=torch.float64, device=device)

    def add(self, sums_and_counts: torch.Tensor) -> None:
        self.total += sums_and_counts.detach().double()

    def means(self) -> dict[str, float]:
        """Sum over count of each statistic; NaN for one that no image of the chunk defined."""
        sums, counts = self.total.tolist()
        return {
            name: round(total / count, 5) if count else math.nan
            for name, total, count in zip(self.names, sums, counts)
        }


def _summary_writer(log_dir: Path, purge_step: int):
    """TensorBoard's event writer, or None (said once) without the optional tensorboard."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # the optional extra `tensorboard`
    except ImportError:
        log.info(
            "tensorboard is not installed: the loss curve goes to the TSV only "
            "(pip install '.[tensorboard]' for event files)"
        )
        return None
    # purge_step hides the events that an interrupted run wrote after its last checkpoint.
    return SummaryWriter(str(log_dir), purge_step=purge_step, flush_secs=10)


class LossCurve:
    """A training run's rows of loss values: a TSV at `path` (first column the step: epoch or
    iteration), rewritten at every row, and TensorBoard event files in `path`'s folder under
    `tensorboard/` when tensorboard is installed. Checkpointed with the run (`state_dict`)."""

    def __init__(self, path, columns):
        self.path = Path(path)
        self.columns = tuple(columns)
        self.rows = []
        self.events = None

    def add(self, **values) -> None:
        step, *rest = row = [values[name] for name in self.columns]
        self.rows.append(row)
        self.write()
        if self.events is None:
            self.events = _summary_writer(self.path.parent / "tensorboard", step) or False
        if self.events:
            for name, value in zip(self.columns[1:], rest):
                self.events.add_scalar(name, value, step)

    def write(self) -> None:
        with atomic_path(self.path) as tmp, open(tmp, "w", newline="") as file:
            writer = csv.writer(file, delimiter="\t", lineterminator="\n")
            writer.writerow(self.columns)
            writer.writerows(self.rows)

    def close(self) -> None:
        if self.events:
            self.events.close()

    def state_dict(self) -> dict:
        return {"rows": [list(row) for row in self.rows]}

    def load_state_dict(self, state: dict) -> None:
        self.rows = [list(row) for row in state["rows"]]
        self.write()


def read_curve(path) -> dict[str, np.ndarray]:
    """A LossCurve's TSV as column name -> values."""
    with open(path, newline="") as file:
        header, *rows = csv.reader(file, delimiter="\t")
    table = np.array(rows, dtype=float).reshape(len(rows), len(header))
    return dict(zip(header, table.T))


def train_in_chunks(
    *, num_chunks, run_chunk, state: dict, checkpoint_dir, run_key: str, seed: int
) -> None:
    """Run `run_chunk(chunk)` for every chunk not yet checkpointed, checkpointing `state`
    (name -> object with state_dict/load_state_dict, "model" among them) after each."""
    start = resume(checkpoint_dir, run_key, state)
    for chunk in range(start, num_chunks):
        seed_everything(chunk_seed(seed, chunk))
        state["model"].train()
        run_chunk(chunk)
        save_checkpoint(checkpoint_dir, chunk + 1, run_key, state)


@dataclass
class TrainingSetup:
    """Where and how a training stage runs, and on which dataset (`start_training`)."""

    training: dict
    seed: int
    threads: int
    device: torch.device
    precision: str
    manifest: Manifest

    def trainer(
        self,
        build_model,
        dataset,
        *,
        section: str,
        scheduler,
        curve: LossCurve,
        drop_last: bool = False,
    ) -> "Trainer":
        """The model `build_model()` builds under the run's seed, on the device, with its
        optimiser, `scheduler(optimizer)`, loss scaler, and a chunk loader over `dataset`,
        whose batches `dataset.finish(batch, device)` finishes on the device.
        `section`: the config section of the training settings, named in errors. With
        `drop_last` (epochs that drop their last partial batch) a batch size larger than the
        dataset, which would train without a single step, raises ConfigError."""
        batch_size = self.training["batch_size"]
        if drop_last and batch_size > len(dataset):
            raise ConfigError(
                f"config key '{section}.batch_size': {batch_size} is larger than the "
                f"{len(dataset)} training images, so an epoch (last partial batch dropped) "
                "takes no step"
            )
        torch.manual_seed(self.seed)
        model = prepare_model(build_model(), self.device, training=True)
        optimizer = optimizer_for(model, self.training)
        sampler, loader = chunk_loader(
            dataset,
            self.seed,
            self.device,
            self.threads,
            batch_size=batch_size,
            drop_last=drop_last,
        )
        return Trainer(
            self,
            model,
            optimizer,
            scheduler(optimizer),
            grad_scaler(self.device, self.precision),
            sampler,
            loader,
            dataset.finish,
            curve,
        )


def start_training(
    manifest_path, training: dict, *, seed: int, device: str, precision: str, threads: int
) -> TrainingSetup:
    device = select_device(device)
    set_torch_threads(main_process_threads(device, threads))
    precision = resolve_precision(precision, device)
    return TrainingSetup(training, seed, threads, device, precision, Manifest.load(manifest_path))


class PrecisionHistory:
    """The precisions a training run trained in, in order: one, unless a resumed run went on
    where the precision resolves otherwise (`auto` on another GPU type after a requeue). It
    continues there, says so in one log line, and the model's sidecar lists both: the
    decision is to keep hours of training, and to make the mix visible."""

    def __init__(self, current: str):
        self.current = current
        self.used = [current]

    def state_dict(self) -> dict:
        return {"used": list(self.used)}

    def load_state_dict(self, state: dict) -> None:
        self.used = list(state["used"])
        if self.used[-1] != self.current:
            log.warning(
                "the checkpoint was trained in %s; training continues in %s, the "
                "precision on this device (the model's sidecar lists both)",
                self.used[-1],
                self.current,
            )
            self.used.append(self.current)


@dataclass
class Trainer:
    """A training run ready to go: `sampler.set_...`, iterate `batches()`, `step(loss)` (or
    `accumulated_step(losses)` over micro-batches), and `train(...)` to run every chunk with
    checkpoints."""

    setup: TrainingSetup
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    sampler: ChunkSampler
    loader: UserErrorLoader
    finish: Callable[[dict, torch.device], dict]
    curve: LossCurve
    precisions: PrecisionHistory = field(init=False)

    def __post_init__(self):
        self.precisions = PrecisionHistory(self.setup.precision)

    @property
    def device(self) -> torch.device:
        return self.setup.device

    def batches(self) -> Iterator[dict]:
        """The loader's batches of the chunk, finished on the device (`len(loader)` of them)."""
        for batch in self.loader:
            yield self.finish(batch, self.setup.device)

    def autocast(self):
        return autocast(self.setup.device, self.setup.precision)

    def step(self, loss: torch.Tensor) -> None:
        optimisation_step(loss, self.optimizer, self.scaler)

    def accumulated_step(self, losses) -> torch.Tensor:
        return accumulated_step(losses, self.optimizer, self.scaler)

    def lr(self) -> float:
        """The learning rate of the first parameter group (the backbone's weights) now."""
        return self.scheduler.get_last_lr()[0]

    def save(self, model_path, *, input_size: int, labels: str, **metadata) -> None:
        """The trained model file and its sidecar; `labels` says what it learned from, and
        `precision` the precisions it trained in (two where a resumed run changed GPU type)."""
        manifest = self.setup.manifest
        trained_on = {
            "dataset": manifest.root,
            "split": "train",
            "images": len(manifest.ids["train"]),
            "labels": labels,
        }
        # What trained it (device, CPU capability, threads, versions, commit) goes in the
        # sidecar at run time, never in a rule param: it must not rerun anything. A resumed
        # run records the process that finished it.
        save_model(
            model_path,
            self.model,
            class_names=["background", *manifest.class_names],
            input_size=input_size,
            trained_on=trained_on,
            training=self.setup.training,
            precision=self.precisions.used,
            provenance=provenance(device=self.setup.device),
            **metadata,
        )

    def train(self, num_chunks: int, run_chunk, checkpoint_dir, *, inputs, **settings) -> None:
        """`run_chunk(chunk)` for every chunk, resumable; checkpoints are keyed on the training
        settings, seed, `settings`, and the contents of the paths `inputs`. Not on the
        precision: a run requeued onto a GPU where `auto` resolves otherwise continues from its
        checkpoint (PrecisionHistory) instead of starting over."""
        setup = self.setup
        run_key = run_id(
            training=setup.training, seed=setup.seed, inputs=content_digest(*inputs), **settings
        )
        state = {
            "model": self.model,
            "optimizer": self.optimizer,
            "scheduler": self.scheduler,
            "scaler": self.scaler,
            "curve": self.curve,
            "precision": self.precisions,
        }
        self.curve.write()
        try:
            train_in_chunks(
                num_chunks=num_chunks,
                run_chunk=run_chunk,
                state=state,
                checkpoint_dir=checkpoint_dir,
                run_key=run_key,
                seed=setup.seed,
            )
        finally:
            self.curve.close()
