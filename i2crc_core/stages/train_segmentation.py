"""Stage: train DeepLab-v2 on a set of training labels (poly learning rate, SPEC §5)."""

import logging

import torch
from tqdm import tqdm

from ..checkpoints import save_model
from ..datasets import SegmentationDataset
from ..device import autocast, grad_scaler, prepare_model, resolve_precision, select_device
from ..fileio import IGNORE, content_digest
from ..losses import segmentation_loss
from ..manifest import Manifest
from ..models import build_segmenter
from ..sampling import chunk_loader
from ..training import LossLog, make_optimizer, optimisation_step, run_id, train_in_chunks

log = logging.getLogger(__name__)


def run(*, manifest_path, label_dir, model_path, checkpoint_dir, checkpoint_every, training,
        weights, seed, device, precision, threads):
    """`weights`: a local ImageNet state-dict file for the backbone, or None. The model does not
    depend on `checkpoint_every` (see sampling.ChunkSampler), only where a resumed run starts."""
    torch.set_num_threads(threads)
    device = select_device(device)
    precision = resolve_precision(precision, device)
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
    model = prepare_model(model, device, training=True)
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
    chunk_length = checkpoint_every
    num_chunks = -(-total // chunk_length)

    scaler = grad_scaler(device, precision)
    sampler, loader = chunk_loader(dataset, seed, device, threads,
                                   batch_size=training["batch_size"])

    def run_chunk(chunk):
        first = chunk * chunk_length
        iterations = min(chunk_length, total - first)
        sampler.set_span(first * training["batch_size"], iterations * training["batch_size"])
        losses = LossLog(("loss",), device, lambda i: f"iteration {first + i + 1}")
        for batch in tqdm(loader, desc=f"iterations {first + 1}-{first + iterations}", mininterval=10):
            with autocast(device, precision):
                logits = model(batch["image"].to(device, non_blocking=True))
            loss = segmentation_loss(logits, batch["label"].to(device, non_blocking=True), IGNORE)
            optimisation_step(loss, optimizer, scaler)
            scheduler.step()
            losses.add(loss)
        log.info("iteration %d/%d mean loss %.4f", first + iterations, total, losses.means()["loss"])

    train_in_chunks(
        num_chunks=num_chunks,
        run_chunk=run_chunk,
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        scaler=scaler,
        checkpoint_dir=checkpoint_dir,
        run_key=run_id(
            training=training,
            chunk_length=chunk_length,
            seed=seed,
            precision=precision,
            inputs=content_digest(manifest_path, label_dir),
        ),
        seed=seed,
    )
    save_model(model_path, model, training=training)
