"""Stage: train DeepLab-v2 on a set of training labels (poly learning rate, docs/method.md §5)."""

import logging

import torch
from tqdm import tqdm

from ..data.datasets import SegmentationDataset
from ..infra.fileio import IGNORE
from ..method.losses import msc_segmentation_loss, segmentation_loss
from ..nets.models import build_segmenter
from ..nets.training import LossCurve, LossLog, start_training

log = logging.getLogger(__name__)


def poly_lr_factor(step: int, *, total: int, power: float, every: int) -> float:
    """The poly schedule's factor of the base rate at 0-based iteration `step` of `total`, the
    rate held for `every` iterations at a time (the ref code's PolynomialLR, step_size 10:
    iterations 1-10 at the base rate, then the rate of the iteration that ended each ten)."""
    return (1 - min(every * (step // every), total - 1) / total) ** power


def run(
    *,
    manifest_path,
    label_dir,
    model_path,
    curve_path,
    checkpoint_dir,
    checkpoint_every,
    training,
    weights,
    seed,
    device,
    precision,
    threads,
):
    """`weights`: a local ImageNet state-dict file for the backbone, or None. The model does not
    depend on `checkpoint_every` (see sampling.ChunkSampler), only where a resumed run starts.
    An iteration is one optimiser step over `accumulate` micro-batches of `batch_size` crops,
    consecutive samples of the sampler's stream."""
    setup = start_training(
        manifest_path, training, seed=seed, device=device, precision=precision, threads=threads
    )
    manifest = setup.manifest
    dataset = SegmentationDataset(
        manifest.layout(),
        manifest.ids["train"],
        label_dir,
        manifest.num_classes,
        crop_size=training["crop_size"],
        scale_range=tuple(training["scale_range"]),
        scale_step=training["scale_step"],
        flip=training["flip"],
        train=True,
    )
    total, batch_size = training["iterations"], training["batch_size"]
    accumulate, msc_scales = training["accumulate"], training["msc_scales"]
    trainer = setup.trainer(
        lambda: build_segmenter(
            training["backbone"],
            manifest.num_classes,
            weights,
            aspp_rates=training["aspp_rates"],
            input_normalisation=training["input_normalisation"],
        ),
        dataset,
        section="segmentation",
        scheduler=lambda optimizer: torch.optim.lr_scheduler.LambdaLR(
            optimizer,
            lambda step: poly_lr_factor(
                step, total=total, power=training["poly_power"], every=training["poly_every"]
            ),
        ),
        curve=LossCurve(curve_path, ("iteration", "loss", "lr")),
    )

    def micro_batch_loss(batch):
        with trainer.autocast():
            if msc_scales:
                logits = trainer.model.msc_logits(batch["image"], msc_scales)
            else:
                logits = trainer.model(batch["image"])
        loss_of = msc_segmentation_loss if msc_scales else segmentation_loss
        return loss_of(logits, batch["label"], IGNORE) / accumulate

    def run_chunk(chunk):
        first = chunk * checkpoint_every
        iterations = min(checkpoint_every, total - first)
        per_iteration = batch_size * accumulate
        trainer.sampler.set_span(first * per_iteration, iterations * per_iteration)
        losses = LossLog(
            ("loss",),
            trainer.device,
            lambda i: f"iteration {first + i + 1}",
            length=iterations,
            on_read=lambda steps, means: trainer.curve.add(
                iteration=first + steps, loss=means["loss"], lr=trainer.lr()
            ),
        )
        batches = trainer.batches()
        for group in tqdm(
            zip(*[batches] * accumulate),  # groups of `accumulate` consecutive batches
            total=iterations,
            desc=f"iterations {first + 1}-{first + iterations}",
            mininterval=10,
        ):
            loss = trainer.accumulated_step(micro_batch_loss(batch) for batch in group)
            losses.add(loss)  # before the scheduler's step: a row's lr is its last iteration's
            trainer.scheduler.step()
        log.info(
            "iteration %d/%d mean loss %.4f", first + iterations, total, losses.means()["loss"]
        )

    trainer.train(
        -(-total // checkpoint_every),
        run_chunk,
        checkpoint_dir,
        chunk_length=checkpoint_every,
        inputs=(manifest_path, label_dir),
    )
    trainer.save(
        model_path, input_size=training["crop_size"], labels=f"the pixel labels in {label_dir}"
    )
