"""Stage: CAMs (Eq. 2) of one shard of the training images into an HDF5 store."""

import logging

import torch
from tqdm import tqdm

from ..camstore import CamStoreWriter
from ..cams import compute_cams_batch
from ..checkpoints import load_model
from ..datasets import ImageDataset
from ..errors import ConfigError
from ..inference import same_size_batches
from ..manifest import Manifest
from ..training import autocast, prepare_model, select_device

log = logging.getLogger(__name__)

BATCH_SIZE = 16


def shard_ids(ids: list[str], shard: str) -> list[str]:
    """Ids of shard "i-of-n" (Snakemake's scatter item): every n-th id starting at i-1."""
    try:
        index, count = (int(part) for part in shard.split("-of-"))
    except ValueError:
        raise ConfigError(f"shard '{shard}' is not of the form 'i-of-n'") from None
    if not 1 <= index <= count:
        raise ConfigError(f"shard '{shard}': index outside 1..{count}")
    return ids[index - 1 :: count]


def run(*, manifest_path, model_path, out_path, shard, scales, flip, device, threads):
    torch.set_num_threads(threads)
    device = select_device(device)
    manifest = Manifest.load(manifest_path)
    ids = shard_ids(manifest.ids["train"], shard)
    labels = manifest.labels("train")
    model = prepare_model(load_model(model_path, device, expected_kind="classifier"), device)
    dataset = ImageDataset(manifest.layout(), ids)
    with CamStoreWriter(out_path) as writer, tqdm(total=len(ids), desc="cams", mininterval=10) as bar:
        for batch in same_size_batches(dataset, BATCH_SIZE):
            images = torch.stack([sample["image"] for sample in batch]).to(device)
            class_ids = [labels[sample["id"]] for sample in batch]
            with autocast(device):
                cams = compute_cams_batch(model, images, class_ids, scales=scales, flip=flip)
            for sample, image_cams, image_classes in zip(batch, cams, class_ids):
                writer.write(sample["id"], image_cams, image_classes)
            bar.update(len(batch))
    log.info("shard %s: %d images", shard, len(ids))
