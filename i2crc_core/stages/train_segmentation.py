"""Stage: train DeepLab-v2 on a set of training labels (poly learning rate, docs/method.md §5)."""

import logging

import torch
from tqdm import tqdm

from ..datasets import SegmentationDataset
from ..fileio import IGNORE
from ..losses import segmentation_loss
from ..models import build_segmenter
from ..training import LossCurve, LossLog, start_training

log = logging.getLogger(__name__)


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
    depend on `checkpoint_every` (see sampling.ChunkSampler), only where a resumed run starts."""
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
        flip=training["flip"],
        train=True,
    )
    total, batch_size = training["iterations"], training["batch_size"]
    trainer = setup.trainer(
        lambda: build_segmenter(
            training["backbone"], manifest.num_classes, weights, aspp_rates=training["aspp_rates"]
        ),
        dataset,
        section="segmentation",
        scheduler=lambda optimizer: torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: (1 - min(step, total - 1) / total) ** training["poly_power"]
        ),
        curve=LossCurve(curve_path, ("iteration", "loss", "lr")),
    )

    def run_chunk(chunk):
        first = chunk * checkpoint_every
        iterations = min(checkpoint_every, total - first)
        trainer.sampler.set_span(first * batch_size, iterations * batch_size)
        losses = LossLog(
            ("loss",),
            trainer.device,
            lambda i: f"iteration {first + i + 1}",
            length=iterations,
            on_read=lambda steps, means: trainer.curve.add(
                iteration=first + steps, loss=means["loss"], lr=trainer.lr()
            ),
        )
        for batch in tqdm(
            trainer.batches(),
            total=len(trainer.loader),
            desc=f"iterations {first + 1}-{first + iterations}",
            mininterval=10,
        ):
            with trainer.autocast():
                logits = trainer.model(batch["image"])
            loss = segmentation_loss(logits, batch["label"], IGNORE)
            trainer.step(loss)
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
