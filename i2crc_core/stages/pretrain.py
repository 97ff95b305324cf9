"""Stage: the synthetic benchmark's stand-in for ImageNet pretraining (docs/method.md §9).

The paper starts the classifier and DeepLab from ImageNet weights; the benchmark's `small`
backbone has none. This stage trains a `small` classifier on the image-level labels alone
(Eq. 1: no pixel labels, no saliency, no relation constraints), once per seed, and writes its
backbone's weights: `classifier.weights` / `segmentation.weights: pretrained` start every
experiment from them. The head is discarded, as an ImageNet classifier's is.
"""

import logging

import torch
from tqdm import tqdm

from ..data.datasets import ClassificationDataset
from ..method.losses import classification_loss
from ..nets.checkpoints import save_backbone
from ..nets.models import build_classifier
from ..nets.training import LossCurve, LossLog, start_training

log = logging.getLogger(__name__)


def run(
    *,
    manifest_path,
    model_path,
    backbone_path,
    curve_path,
    checkpoint_dir,
    training,
    seed,
    device,
    precision,
    threads,
):
    setup = start_training(
        manifest_path, training, seed=seed, device=device, precision=precision, threads=threads
    )
    manifest = setup.manifest
    dataset = ClassificationDataset(
        manifest.layout(),
        manifest.ids["train"],
        manifest.labels("train"),
        manifest.num_classes,
        None,
        training["input_size"],
        train=True,
        color_jitter=tuple(training["color_jitter"]),
        flip=training["flip"],
    )
    trainer = setup.trainer(
        lambda: build_classifier("small", manifest.num_classes, head_init=training["head_init"]),
        dataset,
        section="pretraining",
        scheduler=lambda optimizer: torch.optim.lr_scheduler.MultiStepLR(
            optimizer, milestones=training["lr_decay_epochs"], gamma=training["lr_decay_factor"]
        ),
        curve=LossCurve(curve_path, ("epoch", "cls", "lr")),
        drop_last=True,
    )

    def run_epoch(epoch):
        trainer.sampler.set_epoch(epoch)
        losses = LossLog(
            ("cls",), trainer.device, lambda i: f"epoch {epoch + 1}, iteration {i + 1}"
        )
        for batch in tqdm(
            trainer.batches(), total=len(trainer.loader), desc=f"epoch {epoch + 1}", mininterval=10
        ):
            with trainer.autocast():
                attention = trainer.model(batch["image"])
            loss = classification_loss(attention, batch["label"])
            trainer.step(loss)
            losses.add(loss)
        means = losses.means()
        trainer.curve.add(epoch=epoch + 1, lr=trainer.lr(), **means)
        trainer.scheduler.step()
        log.info(
            "epoch %d/%d classification loss %.4f", epoch + 1, training["epochs"], means["cls"]
        )

    trainer.train(training["epochs"], run_epoch, checkpoint_dir, inputs=(manifest_path,))
    trainer.save(
        model_path,
        input_size=training["input_size"],
        labels="image-level labels only (pretraining: no pixel labels, no saliency)",
    )
    save_backbone(backbone_path, trainer.model)
