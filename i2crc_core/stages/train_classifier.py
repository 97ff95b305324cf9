"""Stage: train the classifier with the saliency guided relation constraints (Eq. 8)."""

import logging

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..checkpoints import save_model
from ..datasets import ClassificationDataset
from ..fileio import content_digest
from ..losses import total_loss
from ..manifest import Manifest
from ..models import build_classifier
from ..training import (
    autocast,
    check_finite,
    chunk_seed,
    loader_options,
    make_optimizer,
    prepare_model,
    run_id,
    select_device,
    train_in_chunks,
)

log = logging.getLogger(__name__)


def run(*, manifest_path, saliency_dir, model_path, checkpoint_dir, training, weights, losses,
        seed, device, threads):
    """`weights`: a local ImageNet state-dict file for the backbone, or None."""
    torch.set_num_threads(threads)
    device = select_device(device)
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
    model = prepare_model(model, device)
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

    def run_epoch(epoch):
        loader = DataLoader(
            dataset,
            batch_size=training["batch_size"],
            shuffle=True,
            drop_last=True,
            generator=torch.Generator().manual_seed(chunk_seed(seed, epoch)),
            **loader_options(device, threads),
        )
        sums = {}
        for iteration, batch in enumerate(tqdm(loader, desc=f"epoch {epoch + 1}", mininterval=10)):
            images = batch["image"].to(device, non_blocking=True)
            with autocast(device):
                attention = model(images)
            loss, parts = total_loss(
                attention,
                batch["label"].to(device),
                batch["saliency"].to(device),
                **losses,
            )
            check_finite(loss, f"epoch {epoch + 1}, iteration {iteration + 1}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            for key, value in parts.items():
                sums[key] = sums.get(key, 0.0) + value
        scheduler.step()
        means = {key: round(value / max(len(loader), 1), 5) for key, value in sums.items()}
        log.info("epoch %d/%d losses %s", epoch + 1, training["epochs"], means)

    train_in_chunks(
        num_chunks=training["epochs"],
        run_chunk=run_epoch,
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        checkpoint_dir=checkpoint_dir,
        run_key=run_id(
            training=training,
            losses=losses,
            seed=seed,
            inputs=content_digest(manifest_path, saliency_dir),
        ),
        seed=seed,
    )
    save_model(model_path, model, losses=losses, training=training)
