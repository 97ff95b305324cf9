"""Stage: train DeepLab-v2 on a set of training labels (poly learning rate, SPEC §5)."""

import logging

import torch
from torch.utils.data import DataLoader, RandomSampler
from tqdm import tqdm

from ..checkpoints import save_model
from ..datasets import SegmentationDataset
from ..fileio import IGNORE, content_digest
from ..losses import segmentation_loss
from ..manifest import Manifest
from ..models import build_segmenter
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


def run(*, manifest_path, label_dir, model_path, checkpoint_dir, training, weights, seed, device,
        threads):
    """`weights`: a local ImageNet state-dict file for the backbone, or None."""
    torch.set_num_threads(threads)
    device = select_device(device)
    manifest = Manifest.load(manifest_path)
    ids = manifest.ids["train"]
    dataset = SegmentationDataset(
        manifest.layout(),
        ids,
        label_dir,
        manifest.num_classes,
        crop_size=training["crop_size"],
        scale_range=tuple(training["scale_range"]),
        flip=training["flip"],
        train=True,
    )
    torch.manual_seed(seed)
    model = build_segmenter(
        training["backbone"],
        manifest.num_classes,
        weights,
        aspp_rates=training["aspp_rates"],
    )
    model = prepare_model(model, device)
    optimizer = make_optimizer(
        training["optimizer"],
        model.param_groups(training["lr"]),
        lr=training["lr"],
        momentum=training["momentum"],
        weight_decay=training["weight_decay"],
    )
    total = training["iterations"]
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: (1 - min(step, total - 1) / total) ** training["poly_power"]
    )
    chunk_length = training["checkpoint_every"]
    num_chunks = -(-total // chunk_length)

    def run_chunk(chunk):
        iterations = min(chunk_length, total - chunk * chunk_length)
        sampler = RandomSampler(
            dataset,
            replacement=True,
            num_samples=iterations * training["batch_size"],
            generator=torch.Generator().manual_seed(chunk_seed(seed, chunk)),
        )
        loader = DataLoader(
            dataset,
            batch_size=training["batch_size"],
            sampler=sampler,
            **loader_options(device, threads),
        )
        running = 0.0
        first = chunk * chunk_length
        for offset, batch in enumerate(tqdm(loader, desc=f"iterations {first + 1}-{first + iterations}", mininterval=10)):
            with autocast(device):
                logits = model(batch["image"].to(device, non_blocking=True))
            loss = segmentation_loss(logits, batch["label"].to(device, non_blocking=True), IGNORE)
            check_finite(loss, f"iteration {first + offset + 1}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            running += loss.item()
        log.info("iteration %d/%d mean loss %.4f", first + iterations, total, running / iterations)

    train_in_chunks(
        num_chunks=num_chunks,
        run_chunk=run_chunk,
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        checkpoint_dir=checkpoint_dir,
        run_key=run_id(
            training=training, seed=seed, inputs=content_digest(manifest_path, label_dir)
        ),
        seed=seed,
    )
    save_model(model_path, model, training=training)
