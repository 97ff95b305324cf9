"""Stage: segmentation predictions (palette PNGs) for the images of one split."""

import logging
from pathlib import Path

import torch
from tqdm import tqdm

from ..checkpoints import load_model
from ..device import autocast, prepare_model, resolve_precision, select_device
from ..fileio import write_label
from ..inference import BackgroundWriter, image_batches, predict_labels
from ..manifest import Manifest

log = logging.getLogger(__name__)


def run(*, manifest_path, model_path, split, out_dir, scales, device, precision, threads):
    torch.set_num_threads(threads)
    device = select_device(device)
    precision = resolve_precision(precision, device)
    manifest = Manifest.load(manifest_path)
    model = prepare_model(load_model(model_path, device, expected_kind="segmenter"), device,
                          training=False)
    ids = manifest.ids[split]
    batches = image_batches(manifest.layout(), ids, device, threads)

    def write(entry):
        image_id, label = entry
        write_label(Path(out_dir) / f"{image_id}.png", label)

    with BackgroundWriter(write) as writer, tqdm(total=len(ids), desc=f"predict {split}",
                                                 mininterval=10) as bar:
        for batch in batches:
            with autocast(device, precision):
                labels = predict_labels(model, batch["image"].to(device, non_blocking=True), scales)
            for entry in zip(batch["ids"], labels):
                writer.put(entry)
            bar.update(len(labels))
