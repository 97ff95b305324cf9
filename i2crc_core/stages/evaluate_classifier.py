"""Stage: a classifier's image-level predictions on a split, scored against its image labels.

The scores are q_c of Eq. 1 (the attention map's spatial mean), computed at the images' own
size; each class's images are ranked by them into average precision, and the mean over
classes (mAP) is the benchmark's criterion that a classifier has converged (docs/method.md §9).
"""

import logging

import numpy as np
import torch

from ..data.manifest import Manifest
from ..infra.fileio import write_json
from ..method.metrics import average_precision
from ..nets.checkpoints import load_model
from ..nets.device import prepare_model, resolve_precision, select_device, set_torch_threads
from ..nets.inference import infer_images

log = logging.getLogger(__name__)


def run(*, manifest_path, model_path, split, out_path, device, precision, threads):
    set_torch_threads(threads)
    device = select_device(device)
    precision = resolve_precision(precision, device)
    manifest = Manifest.load(manifest_path)
    model = prepare_model(
        load_model(model_path, device, expected_kind="classifier"), device, training=False
    )
    ids = manifest.ids[split]
    scores = {}
    with torch.inference_mode():
        infer_images(
            manifest.layout(),
            ids,
            lambda images: model(images).float().mean(dim=(2, 3)).cpu().numpy(),
            scores.__setitem__,
            device=device,
            precision=precision,
            threads=threads,
            desc=f"classify {split}",
        )
    labels = manifest.labels(split)
    targets = np.zeros((len(ids), manifest.num_classes), dtype=bool)
    for row, image_id in enumerate(ids):
        targets[row, [c - 1 for c in labels[image_id]]] = True
    ap = average_precision(np.stack([scores[image_id] for image_id in ids]), targets)
    result = {
        "split": split,
        "split_list": manifest.split_name(split),
        "images": len(ids),
        "class_names": manifest.class_names,
        "ap": [None if np.isnan(value) else float(value) for value in ap],
        "map": float(np.nanmean(ap)),
    }
    log.info(
        "%s (%d images): classification mAP %.4f", result["split_list"], len(ids), result["map"]
    )
    write_json(out_path, result)
