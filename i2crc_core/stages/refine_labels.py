"""Stage: object guided label refinement (Eq. 9-11) of the training labels."""

from pathlib import Path

from tqdm import tqdm

from ..data.manifest import Manifest
from ..infra.fileio import path_in, read_label, write_label
from ..method.refine import refine_label


def run(*, manifest_path, prediction_dir, initial_dir, out_dir, **refinement):
    manifest = Manifest.load(manifest_path)
    labels = manifest.labels("train")
    for image_id in tqdm(manifest.ids["train"], desc="refine", mininterval=10):
        name = f"{image_id}.png"
        prediction = read_label(Path(prediction_dir) / name, manifest.num_classes)
        initial = read_label(Path(initial_dir) / name, manifest.num_classes)
        refined = refine_label(prediction, initial, labels[image_id], **refinement)
        write_label(path_in(out_dir, image_id, ".png"), refined)
