"""Stage: one saliency map per training image, and the maps' quality against the truth.

Quality is `saliency.SaliencyScore` (the paper's Table VI) over all training images and over
the simple (single-class) ones.
"""

import logging
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..data import saliency
from ..data.manifest import Manifest
from ..infra.errors import ConfigError
from ..infra.fileio import path_in, read_image, read_label, write_gray, write_json

log = logging.getLogger(__name__)


def _saliency_map(source, image_id, mask, layout, folder, simulated, seed):
    if source == "simulated":
        return saliency.simulate_detector(mask, saliency.image_rng(seed, image_id), **simulated)
    if source.startswith("opencv_"):
        return saliency.compute_opencv(
            read_image(layout.image_path(image_id)), source.removeprefix("opencv_")
        )
    if source == "folder":
        soft = saliency.load_saliency(Path(folder) / f"{image_id}.png", mask.shape)
        return np.round(soft * 255).astype(np.uint8)
    raise ConfigError(f"config key 'saliency.source': unknown source '{source}'")


def run(*, manifest_path, out_dir, quality_path, source, folder, simulated, seed):
    manifest = Manifest.load(manifest_path)
    layout = manifest.layout()
    labels = manifest.labels("train")
    every, simple = saliency.SaliencyScore(), saliency.SaliencyScore()
    for image_id in tqdm(manifest.ids["train"], desc="saliency", mininterval=5):
        mask = read_label(layout.mask_path(image_id), manifest.num_classes)
        saliency_map = _saliency_map(source, image_id, mask, layout, folder, simulated, seed)
        write_gray(path_in(out_dir, image_id, ".png"), saliency_map)
        every.update(saliency_map, mask)
        if len(labels[image_id]) == 1:
            simple.update(saliency_map, mask)
    quality = {
        "source": source,
        "miou_all": float(every.miou()),
        "miou_simple": float(simple.miou()),
        "images": len(manifest.ids["train"]),
    }
    log.info("saliency quality: %s", quality)
    write_json(quality_path, quality)
