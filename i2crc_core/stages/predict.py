"""Stage: segmentation predictions (palette PNGs) for the images of one split."""

import logging
from pathlib import Path

import torch
from tqdm import tqdm

from ..checkpoints import load_model
from ..datasets import ImageDataset
from ..fileio import write_label
from ..manifest import Manifest
from ..inference import predict_labels, same_size_batches
from ..training import autocast, prepare_model, select_device

log = logging.getLogger(__name__)

BATCH_SIZE = 16


def run(*, manifest_path, model_path, split, out_dir, scales, device, threads):
    torch.set_num_threads(threads)
    device = select_device(device)
    manifest = Manifest.load(manifest_path)
    model = prepare_model(load_model(model_path, device, expected_kind="segmenter"), device)
    ids = manifest.ids[split]
    dataset = ImageDataset(manifest.layout(), ids)
    with tqdm(total=len(ids), desc=f"predict {split}", mininterval=10) as bar:
        for batch in same_size_batches(dataset, BATCH_SIZE):
            images = torch.stack([sample["image"] for sample in batch]).to(device)
            with autocast(device):
                labels = predict_labels(model, images, scales)
            for sample, label in zip(batch, labels):
                write_label(Path(out_dir) / f"{sample['id']}.png", label)
            bar.update(len(batch))
