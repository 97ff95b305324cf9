"""PASCAL VOC 2012 + SBD, downloaded and built into the usual ``SegmentationClassAug`` setup.

`fetch_voc_aug` downloads the VOC 2012 trainval tar and SBD's ``benchmark.tgz`` with
`downloads.download` (resumed, checksum-pinned), extracts them with `archives.extract_archive`,
and builds, inside one staging folder that replaces the dataset root only when everything is
done:

* the VOC 2012 tree (``VOCdevkit/VOC2012``: JPEGImages, SegmentationClass, ImageSets, ...);
* ``SegmentationClassAug/{id}.png``: one VOC palette PNG for every image that VOC's segmentation
  lists (train, val) or SBD's lists (train, val) name. SBD's masks are the ``GTcls.Segmentation``
  class-index arrays of ``benchmark_RELEASE/dataset/cls/{id}.mat``.
  **Where both annotate an image, VOC's own SegmentationClass PNG is used**: it is the
  challenge's official annotation, the one the val set is scored against, drawn more carefully
  and with 255 (ignore) on object borders and ambiguous regions; SBD's crowd-sourced masks of
  the same images are coarser and label every pixel. Preferring VOC also means an image never has
  two different ground truths between training and evaluation;
* ``ImageSets/Segmentation/train_aug.txt`` = (VOC train ∪ SBD train ∪ SBD val) − VOC val,
  sorted: 10,582 ids from the real archives, checked when `train_aug_count` is given;
* images stay VOC's (VOC 2012 holds every SBD image); an id that VOC lacks is copied from SBD's
  ``img/`` folder.

Image-level labels are then derived from these masks by the prepare_dataset stage
(``dataset.image_labels: masks``). Every failure is a one-line `FetchError` naming the URL,
archive or member and what is wrong; nothing half-built is left at the root.
"""

import logging
import shutil
from pathlib import Path

import numpy as np
import scipy.io
from tqdm import tqdm

from ..infra.errors import DatasetError, FetchError
from ..infra.fileio import atomic_directory, path_in, write_label
from .archives import extract_archive
from .downloads import download, url_filename
from .layout import read_split

__all__ = ["VOC_MEMBER", "SBD_MEMBER", "fetch_voc_aug", "sbd_mask", "train_aug_ids"]

log = logging.getLogger(__name__)

VOC_MEMBER = "VOCdevkit/VOC2012"
SBD_MEMBER = "benchmark_RELEASE/dataset"
_SPLITS = "ImageSets/Segmentation"


def sbd_mask(path) -> np.ndarray:
    """The uint8 class-index mask (``GTcls.Segmentation``) of an SBD ``cls/{id}.mat`` file."""
    path = Path(path)
    try:
        mask = scipy.io.loadmat(path, squeeze_me=True, struct_as_record=False)["GTcls"]
        mask = np.asarray(mask.Segmentation)
    except (KeyError, AttributeError):
        raise FetchError(f"{path}: has no GTcls.Segmentation (not an SBD cls file)") from None
    except (scipy.io.matlab.MatReadError, ValueError, TypeError, IndexError, OSError) as error:
        raise FetchError(f"{path}: unreadable .mat file ({error})") from None
    if mask.ndim != 2 or not np.issubdtype(mask.dtype, np.integer):
        raise FetchError(f"{path}: GTcls.Segmentation is {mask.dtype} {mask.shape}, not a 2-D mask")
    return mask.astype(np.uint8)


def train_aug_ids(voc_train, voc_val, sbd_train, sbd_val) -> list[str]:
    """(VOC train ∪ SBD train ∪ SBD val) − VOC val, sorted."""
    return sorted((set(voc_train) | set(sbd_train) | set(sbd_val)) - set(voc_val))


class _Tree:
    """An extracted archive folder whose missing files are reported as archive members."""

    def __init__(self, folder: Path, archive: Path, member: str):
        self.folder, self.archive, self.member = folder, archive, member

    def file(self, relative: str, why: str) -> Path:
        path = self.folder / relative
        if not path.is_file():
            raise FetchError(f"{self.archive}: no member {self.member}/{relative} ({why})")
        return path

    def split(self, relative: str) -> list[str]:
        try:
            return read_split(self.file(relative, "a split list"))
        except DatasetError as error:
            raise FetchError(f"{self.archive}: {error}") from None


def _build(voc: _Tree, sbd: _Tree, train_aug_count) -> list[str]:
    """Write SegmentationClassAug, train_aug.txt and missing images into `voc.folder`."""
    voc_ids = {split: voc.split(f"{_SPLITS}/{split}.txt") for split in ("train", "val")}
    sbd_ids = {split: sbd.split(f"{split}.txt") for split in ("train", "val")}
    train_aug = train_aug_ids(voc_ids["train"], voc_ids["val"], sbd_ids["train"], sbd_ids["val"])
    if train_aug_count is not None and len(train_aug) != train_aug_count:
        raise FetchError(
            f"{voc.archive} + {sbd.archive}: train_aug (VOC train + SBD train + SBD val - VOC val) "
            f"has {len(train_aug)} images, expected {train_aug_count} "
            "(dataset.train_aug_count; null skips the check)"
        )
    masks = voc.folder / "SegmentationClassAug"
    masks.mkdir()
    voc_annotated = set(voc_ids["train"]) | set(voc_ids["val"])
    for image_id in sorted(voc_annotated):
        source = voc.file(f"SegmentationClass/{image_id}.png", "listed in a VOC split")
        shutil.copyfile(source, path_in(masks, image_id, ".png"))
    sbd_only = sorted((set(sbd_ids["train"]) | set(sbd_ids["val"])) - voc_annotated)
    for image_id in tqdm(sbd_only, desc="SBD .mat -> PNG", mininterval=10):
        mask = sbd_mask(sbd.file(f"cls/{image_id}.mat", "listed in an SBD split"))
        write_label(path_in(masks, image_id, ".png"), mask)
    images = voc.folder / "JPEGImages"
    copied = 0
    for image_id in [*train_aug, *voc_ids["val"]]:
        image = path_in(images, image_id, ".jpg")
        if not image.is_file():
            source = sbd.file(f"img/{image_id}.jpg", "an image VOC lacks")
            shutil.copyfile(source, image)
            copied += 1
    (voc.folder / _SPLITS / "train_aug.txt").write_text("".join(f"{i}\n" for i in train_aug))
    log.info(
        "SegmentationClassAug: %d VOC masks, %d SBD conversions; train_aug %d images; "
        "%d images copied from SBD",
        len(voc_annotated),
        len(sbd_only),
        len(train_aug),
        copied,
    )
    return train_aug


def _remove_stale_builds(root: Path) -> None:
    """Delete the hidden staging folders (gigabytes) of a build that was killed: they are
    named ``.<root name>.*`` (fileio.atomic_directory) and ``..<root name>.*`` (its extraction)."""
    for pattern in (f".{root.name}.*", f"..{root.name}.*"):
        for stale in root.parent.glob(pattern):
            log.info("removing %s, left by an interrupted build", stale)
            shutil.rmtree(stale, ignore_errors=True)


def fetch_voc_aug(*, root, voc, sbd, download_dir, train_aug_count) -> list[str]:
    """Download VOC 2012 trainval and SBD, build the VOC root with SegmentationClassAug and
    train_aug (see the module docstring); returns the train_aug ids.

    `voc`, `sbd`: ``{"url": ..., "md5": ..., "sha256": ...}`` (a null checksum is not checked).
    The archives are kept in `download_dir` under their URL file names, so a rerun reuses (or
    resumes) them. `train_aug_count`: the number of train_aug images to insist on, or None.
    """
    archives = {}
    for name, spec in (("voc", voc), ("sbd", sbd)):
        filename = url_filename(spec["url"])
        if not filename:
            raise FetchError(f"{spec['url']}: the URL does not end in a file name")
        archives[name] = download(
            spec["url"],
            Path(download_dir) / filename,
            md5=spec.get("md5"),
            sha256=spec.get("sha256"),
        )
    _remove_stale_builds(Path(root))
    with atomic_directory(root) as build:
        # extract_archive replaces the (empty) staging folder with VOC's tree.
        extract_archive(archives["voc"], build, member_prefix=VOC_MEMBER)
        extract_archive(archives["sbd"], build / ".sbd", member_prefix=SBD_MEMBER)
        train_aug = _build(
            _Tree(build, archives["voc"], VOC_MEMBER),
            _Tree(build / ".sbd", archives["sbd"], SBD_MEMBER),
            train_aug_count,
        )
        shutil.rmtree(build / ".sbd")
    return train_aug
