"""Stage: train the classifier with the saliency guided relation constraints (Eq. 8)."""

import logging

import torch
from tqdm import tqdm

from ..data.datasets import ClassificationDataset
from ..method.losses import ATTENTION_STATS, LOSS_PARTS, attention_stats, total_loss
from ..nets.models import build_classifier
from ..nets.training import ImageMeans, LossCurve, LossLog, start_training

log = logging.getLogger(__name__)


def run(
    *,
    manifest_path,
    saliency_dir,
    model_path,
    curve_path,
    checkpoint_dir,
    training,
    weights,
    loss_weights,
    seed,
    device,
    precision,
    threads,
):
    """`weights`: a local ImageNet state-dict file for the backbone, or None."""
    setup = start_training(
        manifest_path, training, seed=seed, device=device, precision=precision, threads=threads
    )
    manifest = setup.manifest
    dataset = ClassificationDataset(
        manifest.layout(),
        manifest.ids["train"],
        manifest.labels("train"),
        manifest.num_classes,
        saliency_dir,
        training["input_size"],
        train=True,
        color_jitter=tuple(training["color_jitter"]),
        flip=training["flip"],
    )
    trainer = setup.trainer(
        lambda: build_classifier(
            training["backbone"], manifest.num_classes, weights, training["head_init"]
        ),
        dataset,
        section="classifier",
        scheduler=lambda optimizer: torch.optim.lr_scheduler.MultiStepLR(
            optimizer, milestones=training["lr_decay_epochs"], gamma=training["lr_decay_factor"]
        ),
        curve=LossCurve(curve_path, ("epoch", *LOSS_PARTS, "lr", *ATTENTION_STATS)),
        drop_last=True,
    )

    def run_epoch(epoch):
        trainer.sampler.set_epoch(epoch)
        epoch_losses = LossLog(
            LOSS_PARTS, trainer.device, lambda i: f"epoch {epoch + 1}, iteration {i + 1}"
        )
        # what the constraints do to the attention inside and outside the saliency
        # (docs/pipeline.md §"Watching training")
        epoch_attention = ImageMeans(ATTENTION_STATS, trainer.device)
        for batch in tqdm(
            trainer.batches(), total=len(trainer.loader), desc=f"epoch {epoch + 1}", mininterval=10
        ):
            with trainer.autocast():
                attention = trainer.model(batch["image"])
            labels, saliency = batch["label"], batch["saliency"]
            loss, parts = total_loss(attention, labels, saliency, **loss_weights)
            epoch_attention.add(attention_stats(attention, labels, saliency))
            trainer.step(loss)
            epoch_losses.add(parts)
        means, attention_means = epoch_losses.means(), epoch_attention.means()
        trainer.curve.add(epoch=epoch + 1, lr=trainer.lr(), **means, **attention_means)
        trainer.scheduler.step()
        log.info(
            "epoch %d/%d losses %s attention %s",
            epoch + 1,
            training["epochs"],
            means,
            attention_means,
        )

    trainer.train(
        training["epochs"],
        run_epoch,
        checkpoint_dir,
        loss_weights=loss_weights,
        inputs=(manifest_path, saliency_dir),
    )
    trainer.save(
        model_path,
        input_size=training["input_size"],
        loss_weights=loss_weights,
        labels=f"image-level labels and the saliency maps in {saliency_dir}",
    )
