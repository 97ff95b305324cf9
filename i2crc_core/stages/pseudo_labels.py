"""Stage: pixel pseudo labels from CAMs and saliency (docs/method.md §4)."""

from pathlib import Path

from tqdm import tqdm

from ..data.manifest import Manifest
from ..data.saliency import load_saliency
from ..infra.camstore import CamStore
from ..infra.fileio import path_in, write_label
from ..method.pseudo_labels import pseudo_label


def run(*, manifest_path, cams_path, saliency_dir, out_dir, **thresholds):
    manifest = Manifest.load(manifest_path)
    with CamStore(cams_path) as store:
        for image_id in tqdm(manifest.ids["train"], desc="pseudo labels", mininterval=10):
            cams, class_ids = store[image_id]
            saliency = load_saliency(Path(saliency_dir) / f"{image_id}.png", cams.shape[1:])
            write_label(
                path_in(out_dir, image_id, ".png"),
                pseudo_label(cams, class_ids, saliency, **thresholds),
            )
