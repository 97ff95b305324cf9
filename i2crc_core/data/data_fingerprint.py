"""Data fingerprints that let Snakemake see edits to a user's dataset or saliency folder.

A dataset root or a folder of saliency maps that the user supplies is a rule param, not an
input: Snakemake never looks inside it, so an edited mask or an id appended to a split list
would leave every result looking current. The rule that reads such a folder first
(`prepare_dataset`, `saliency`) carries its fingerprint as a param instead: a sha256 over the
relative path, size and modification time of every file a run reads from it. Editing, adding
or removing one of those files changes the param, which reruns that rule and everything
downstream of it.

Only metadata is read (one `stat` per file, plus the split lists for the ids), so Snakemake's
start-up stays short even for VOC's ~24,000 images and masks
(docs/reproducibility.md §"Rerun semantics" gives the cost). Touching a file without changing
it also reruns: the safe side of the trade.
"""

import hashlib
import os
from pathlib import Path

from .layout import VOC_DIRS


def files_fingerprint(root, relative_paths) -> str:
    """A short sha256 over (path, size, mtime) of each file; a missing one counts as missing,
    so that the stage that reads it says what is wrong."""
    root = Path(root)
    digest = hashlib.sha256()
    for relative in relative_paths:
        try:
            status = os.stat(root / relative)
            entry = f"{relative}\0{status.st_size}\0{status.st_mtime_ns}\n"
        except OSError:
            entry = f"{relative}\0missing\n"
        digest.update(entry.encode())
    return digest.hexdigest()[:16]


def _listed_ids(path: Path) -> list[str]:
    """The ids of a split list as far as it can be read (the stage validates it)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return [line.strip() for line in text.splitlines() if line.strip()]


def dataset_fingerprint(
    root,
    *,
    splits: dict,
    image_labels: str,
    image_dir=VOC_DIRS["image_dir"],
    mask_dir=VOC_DIRS["mask_dir"],
    split_dir=VOC_DIRS["split_dir"],
) -> str:
    """Every file `prepare_dataset` reads from a VOC-layout `root`: the split lists of
    `splits` (role -> name), each listed id's image and mask, `class_names.txt`, and the
    image-label list `image_labels` unless it is "masks" (labels read from the masks)."""
    root = Path(root)
    paths = ["class_names.txt"]
    for name in splits.values():
        split_path = Path(split_dir) / f"{name}.txt"
        paths.append(split_path.as_posix())
        for image_id in _listed_ids(root / split_path):
            paths += [f"{image_dir}/{image_id}.jpg", f"{mask_dir}/{image_id}.png"]
    if image_labels != "masks":
        paths.append(Path(image_labels).resolve().as_posix())
    return files_fingerprint(root, paths)


def folder_fingerprint(folder) -> str:
    """Every file directly inside `folder` (e.g. one saliency map per image id)."""
    try:
        names = sorted(entry.name for entry in os.scandir(folder) if entry.is_file())
    except OSError:
        names = []
    return files_fingerprint(folder, names)
