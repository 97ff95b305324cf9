"""Stage: train the classifier with the saliency guided relation constraints (Eq. 8)."""

import logging

import torch
from tqdm import tqdm

from ..checkpoints import save_model
from ..datasets import ClassificationDataset
from ..device import autocast, grad_scaler, prepare_model, resolve_precision, select_device
from ..fileio import content_digest
from ..losses import LOSS_PARTS, total_loss
from ..manifest import Manifest
from ..models import build_classifier
from ..sampling import chunk_loader
from ..training import LossLog, make_optimizer, optimisation_step, run_id, train_in_chunks

log = logging.getLogger(__name__)


def run(*, manifest_path, saliency_dir, model_path, checkpoint_dir, training, weights, losses,
        seed, device, precision, threads):
    """`weights`: a local ImageNet state-dict file for the backbone, or None."""
    torch.set_num_threads(threads)
    device = select_device(device)
    precision = resolve_precision(precision, device)
    manifest = Manifest.load(manifest_path)
    ids = manifest.ids["train"]
    dataset = ClassificationDataset(
        manifest.layout(),
        ids,
        manifest.labels("train"),
        manifest.num_classes,
        saliency_dir,
        training["input_size"],
        train=True,
        color_jitter=tuple(training["color_jitter"]),
    )
    torch.manual_seed(seed)
    model = build_classifier(training["backbone"], manifest.num_classes, weights)
    model = prepare_model(model, device, training=True)
    optimizer = make_optimizer(
        training["optimizer"],
        model.param_groups(training["lr"]),
        lr=training["lr"],
        momentum=training["momentum"],
        weight_decay=training["weight_decay"],
    )
    scheduler = torch.optim.lr_scheduler.MultiStepLR(
        optimizer, milestones=training["lr_decay_epochs"], gamma=training["lr_decay_factor"]
    )

    scaler = grad_scaler(device, precision)
    sampler, loader = chunk_loader(dataset, seed, device, threads,
                                   batch_size=training["batch_size"], drop_last=True)

    def run_epoch(epoch):
        sampler.set_epoch(epoch)
        losses_so_far = LossLog(LOSS_PARTS, device, lambda i: f"epoch {epoch + 1}, iteration {i + 1}")
        for batch in tqdm(loader, desc=f"epoch {epoch + 1}", mininterval=10):
            with autocast(device, precision):
                attention = model(batch["image"].to(device, non_blocking=True))
            loss, parts = total_loss(
                attention,
                batch["label"].to(device, non_blocking=True),
                batch["saliency"].to(device, non_blocking=True),
                **losses,
            )
            optimisation_step(loss, optimizer, scaler)
            losses_so_far.add(parts)
        scheduler.step()
        log.info("epoch %d/%d losses %s", epoch + 1, training["epochs"], losses_so_far.means())

    train_in_chunks(
        num_chunks=training["epochs"],
        run_chunk=run_epoch,
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        scaler=scaler,
        checkpoint_dir=checkpoint_dir,
        run_key=run_id(
            training=training,
            losses=losses,
            seed=seed,
            precision=precision,
            inputs=content_digest(manifest_path, saliency_dir),
        ),
        seed=seed,
    )
    save_model(model_path, model, losses=losses, training=training)
