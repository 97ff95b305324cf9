"""Atomic writes and the image / label / saliency file formats.

Labels are VOC palette PNGs: values 0 (background), 1..C (object classes), 255 (ignore).
Saliency maps are single-channel uint8 PNGs (16-bit ones are read too).
"""

import contextlib
import errno
import hashlib
import json
import os
import resource
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import DatasetError, SaliencyError, StorageError

IGNORE = 255


def voc_palette() -> list[int]:
    """The 256-entry PASCAL VOC colour map, flattened as PIL expects."""
    palette = []
    for index in range(256):
        red = green = blue = 0
        code = index
        for bit in range(8):
            red |= ((code >> 0) & 1) << (7 - bit)
            green |= ((code >> 1) & 1) << (7 - bit)
            blue |= ((code >> 2) & 1) << (7 - bit)
            code >>= 3
        palette.extend((red, green, blue))
    return palette


_PALETTE = voc_palette()


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


UMASK = _current_umask()


# errno values of a write that failed for want of room: a user can fix these, not a bug.
_NO_ROOM = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}


def _no_room(path: Path, code: int) -> StorageError:
    return StorageError(
        f"{path}: writing failed: {os.strerror(code)} (disk full, quota or file size "
        "limit); free space and rerun"
    )


def ensure_room(path: Path, grown_from: int, grow_by: int) -> None:
    """Raise StorageError naming `path` unless a file now `grown_from` bytes long can grow by
    `grow_by` bytes (file size limit, free space). For HDF5, which cannot recover from a write
    that fails midway (it crashes the process on closing), so its writers check first."""
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if limit != resource.RLIM_INFINITY and grown_from + grow_by > limit:
        raise _no_room(path, errno.EFBIG)
    stats = os.statvfs(path.parent)
    if stats.f_bavail * stats.f_frsize < grow_by:
        raise _no_room(path, errno.ENOSPC)


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; rename it onto `path` only on success.

    A crash or exception leaves no file at `path`, so a half-written output never looks
    finished to Snakemake or to a resumed run. A write that fails for want of room becomes a
    StorageError naming `path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        # mkstemp creates the file 0600; a result file gets the usual umask permissions.
        os.chmod(tmp, 0o666 & ~UMASK)
        os.replace(tmp, path)
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(error, OSError) and error.errno in _NO_ROOM:
            raise _no_room(path, error.errno) from None
        raise


@contextlib.contextmanager
def atomic_directory(path):
    """Yield an empty staging folder beside `path`; it replaces `path` as a whole only on
    success. On failure the staging folder is removed and an existing `path` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield staging
        # mkdtemp creates the folder 0700; a result folder gets the usual umask permissions.
        os.chmod(staging, 0o777 & ~UMASK)
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, old / path.name)
            try:
                os.replace(staging, path)
            except BaseException:
                os.replace(old / path.name, path)
                raise
            finally:
                shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, path)
    except OSError as error:
        if error.errno in _NO_ROOM:
            raise _no_room(path, error.errno) from None
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def read_image(path) -> np.ndarray:
    """Read an RGB image as uint8 (H, W, 3)."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            # np.array, not asarray: PIL hands out a read-only buffer, and callers
            # (torch.from_numpy, in-place edits) need a writable array.
            return np.array(image.convert("RGB"))
    except FileNotFoundError:
        raise DatasetError(f"{path}: image file is missing") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise DatasetError(f"{path}: image file is unreadable or corrupt ({error})") from None


def read_label(path, num_classes: int) -> np.ndarray:
    """Read a single-channel or palette label PNG as uint8 (H, W) with values in {0..C, 255}."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            if image.mode not in ("P", "L"):
                raise DatasetError(
                    f"{path}: label PNG must be single-channel or palette, found mode {image.mode}"
                )
            label = np.array(image)  # writable (see read_image)
    except FileNotFoundError:
        raise DatasetError(f"{path}: label file is missing") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise DatasetError(f"{path}: label file is unreadable or corrupt ({error})") from None
    invalid = (label > num_classes) & (label != IGNORE)
    if invalid.any():
        bad = sorted(set(np.unique(label[invalid]).tolist()))
        raise DatasetError(f"{path}: label values {bad[:10]} are outside 0..{num_classes} and 255")
    return label


def write_label(path, label: np.ndarray) -> None:
    """Write a uint8 label map atomically as a VOC palette PNG."""
    image = Image.fromarray(np.ascontiguousarray(label, dtype=np.uint8), mode="P")
    image.putpalette(_PALETTE)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG", compress_level=1)


# Modes of 8-bit maps, greyscale or colour (taken as luminance), and of 16-bit greyscale PNGs.
_GRAY_8BIT_MODES = ("1", "L", "LA", "P", "PA", "RGB", "RGBA")
_GRAY_16BIT_MODES = ("I;16", "I;16B", "I;16L")


def write_json(path, data) -> None:
    """`data` as indented UTF-8 JSON at `path`, written atomically."""
    write_text(path, json.dumps(data, indent=1, ensure_ascii=False) + "\n")


def write_text(path, text: str) -> None:
    """`text` as UTF-8 at `path`, written atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def read_gray(path) -> np.ndarray:
    """Read a saliency map as uint8 (H, W) in 0..255: an 8-bit map as it is (colour as its
    luminance), a 16-bit greyscale PNG rescaled from 0..65535. Other modes (32-bit integer,
    float, CMYK, ...) raise SaliencyError: converting them could clip their values at 255."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            if image.mode in _GRAY_16BIT_MODES:
                # 65535 = 255 * 257: value / 257 is value / 65535 on the 0..255 scale.
                return np.round(np.array(image) / 257).astype(np.uint8)
            if image.mode not in _GRAY_8BIT_MODES:
                raise SaliencyError(
                    f"{path}: saliency map has image mode {image.mode}; expected an 8-bit or "
                    "16-bit greyscale PNG (or 8-bit colour)"
                )
            return np.array(image.convert("L"))  # writable (see read_image)
    except FileNotFoundError:
        raise SaliencyError(f"{path}: saliency map is missing") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise SaliencyError(f"{path}: saliency map is unreadable or corrupt ({error})") from None


def write_gray(path, array: np.ndarray) -> None:
    """Write a uint8 (H, W) map atomically as a grayscale PNG."""
    with atomic_path(path) as tmp:
        Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8), mode="L").save(
            tmp, format="PNG", compress_level=1
        )


def write_image(path, image: np.ndarray, quality: int = 95) -> None:
    """Write an RGB uint8 image atomically as JPEG."""
    with atomic_path(path) as tmp:
        Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8), mode="RGB").save(
            tmp, format="JPEG", quality=quality
        )


def content_digest(*paths) -> str:
    """sha256 over the names and bytes of files, directories taken recursively in sorted order.

    Training runs key their checkpoints on it, so a rerun on changed inputs at the same paths
    never resumes a checkpoint of the old inputs.
    """
    digest = hashlib.sha256()
    for path in map(Path, paths):
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            digest.update(str(file.relative_to(path) if path.is_dir() else file.name).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]
