"""Tiny VOC 2012 trainval and SBD benchmark archives in the real layouts.

VOCtrainval_11-May-2012.tar: VOCdevkit/VOC2012/{JPEGImages, SegmentationClass, Annotations,
ImageSets/Segmentation/{train,val,trainval}.txt}. benchmark.tgz: benchmark_RELEASE/dataset/
{img, cls/*.mat (struct GTcls with a uint8 Segmentation field, written by scipy.io.savemat),
inst, train.txt, val.txt}. Used by tests/unit/test_vocaug.py and tests/workflow/test_assets.py.
"""

import hashlib
import io
import tarfile
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image

from i2crc_core.infra.fileio import voc_palette

SIZE = (12, 16)  # (H, W) of every image
VOC_SPLITS = {
    "train": ["2007_000032", "2007_000039", "2008_000001"],
    "val": ["2007_000033", "2008_000002"],
}
SBD_SPLITS = {
    # 2007_000032 is annotated by both (VOC's mask wins); 2008_000002 is VOC val (left out of
    # train_aug); 2008_000005 has no image in VOC (copied from SBD's img/).
    "train": ["2007_000032", "2008_000003", "2008_000002"],
    "val": ["2008_000004", "2008_000005", "2007_000039"],
}
TRAIN_AUG = [
    "2007_000032",
    "2007_000039",
    "2008_000001",
    "2008_000003",
    "2008_000004",
    "2008_000005",
]
NOT_IN_VOC_IMAGES = "2008_000005"


def voc_mask(image_id: str) -> np.ndarray:
    """VOC's mask: one class from the id, a 255 border (as VOC draws object outlines)."""
    mask = np.zeros(SIZE, np.uint8)
    mask[3:9, 4:12] = 255
    mask[4:8, 5:11] = 1 + int(image_id[-2:]) % 20
    return mask


def sbd_mask(image_id: str) -> np.ndarray:
    """SBD's mask: two classes, no ignore pixels."""
    mask = np.zeros(SIZE, np.uint8)
    mask[:6, :8] = 1 + (int(image_id[-2:]) + 7) % 20
    mask[6:, 8:] = 20
    return mask


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _jpeg(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (*SIZE, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG")
    return buffer.getvalue()


def _palette_png(mask: np.ndarray) -> bytes:
    image = Image.fromarray(mask, mode="P")
    image.putpalette(voc_palette())
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _mat(mask: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    classes = np.array([c for c in np.unique(mask) if 0 < c < 255], np.uint8)
    scipy.io.savemat(
        buffer, {"GTcls": {"Segmentation": mask, "CategoriesPresent": classes}}, do_compression=True
    )
    return buffer.getvalue()


def _lines(ids) -> bytes:
    return "".join(f"{i}\n" for i in ids).encode()


def write_voc_tar(path: Path, *, prefix="VOCdevkit/VOC2012") -> Path:
    ids = VOC_SPLITS["train"] + VOC_SPLITS["val"]
    sbd_ids = SBD_SPLITS["train"] + SBD_SPLITS["val"]
    with tarfile.open(path, "w") as tar:
        for seed, image_id in enumerate(sorted(set(ids + sbd_ids) - {NOT_IN_VOC_IMAGES})):
            _add(tar, f"{prefix}/JPEGImages/{image_id}.jpg", _jpeg(seed))
            _add(tar, f"{prefix}/Annotations/{image_id}.xml", b"<annotation/>")
        for image_id in ids:
            _add(
                tar, f"{prefix}/SegmentationClass/{image_id}.png", _palette_png(voc_mask(image_id))
            )
        for split, split_ids in VOC_SPLITS.items():
            _add(tar, f"{prefix}/ImageSets/Segmentation/{split}.txt", _lines(split_ids))
        _add(tar, f"{prefix}/ImageSets/Segmentation/trainval.txt", _lines(sorted(ids)))
    return path


def write_sbd_tgz(path: Path, *, skip_mat=None) -> Path:
    root = "benchmark_RELEASE/dataset"
    with tarfile.open(path, "w:gz") as tar:
        for split, split_ids in SBD_SPLITS.items():
            _add(tar, f"{root}/{split}.txt", _lines(split_ids))
            for image_id in split_ids:
                _add(tar, f"{root}/img/{image_id}.jpg", _jpeg(100 + int(image_id[-2:])))
                _add(tar, f"{root}/inst/{image_id}.mat", b"instance masks (unused)")
                if image_id != skip_mat:
                    _add(tar, f"{root}/cls/{image_id}.mat", _mat(sbd_mask(image_id)))
        _add(tar, "benchmark_RELEASE/benchmark_code_RELEASE/README", b"code")
    return path


def md5(path: Path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()
