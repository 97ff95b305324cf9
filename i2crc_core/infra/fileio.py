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
from PIL import Image, ImageOps, UnidentifiedImageError

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


def _size(size: int) -> str:
    return f"{size / 2**20:.1f} MiB" if size >= 2**20 else f"{size / 2**10:.0f} KiB"


def ensure_room(path: Path, grown_from: int, data: int, headroom: int) -> None:
    """Raise StorageError naming `path` and what was checked unless a file now `grown_from`
    bytes long can take `data` more bytes and `headroom` beyond them (file size limit, free
    space). For HDF5, which cannot recover from a write that fails midway (it crashes the process
    on closing), so its writers check first, with `headroom` for what closing writes."""
    need = data + headroom
    checked = (
        f"{_size(need)} checked before writing: {_size(data)} of data and {_size(headroom)} "
        "kept for what HDF5 writes on closing, which crashes the process if it cannot"
    )
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if limit != resource.RLIM_INFINITY and grown_from + need > limit:
        raise StorageError(
            f"{path}: the file size limit of {_size(limit)} leaves this {_size(grown_from)} file "
            f"{_size(max(limit - grown_from, 0))}, less than the {checked}; raise the limit and "
            "rerun"
        )
    stats = os.statvfs(path.parent)
    free = stats.f_bavail * stats.f_frsize
    if free < need:
        raise StorageError(
            f"{path}: {_size(free)} free on its file system, less than the {checked}; free space "
            "and rerun"
        )


def path_in(folder, name: str, suffix: str) -> Path:
    """`folder/<name><suffix>`, the file of an image id (or output name) in a folder; a
    DatasetError if that file would not lie directly in `folder`. Ids are checked where they are
    read (layout.check_image_id); every writer of such a file asks here too, so that an id that
    reached it another way (a manifest edited by hand) cannot name a file elsewhere."""
    folder = Path(folder)
    path = folder / f"{name}{suffix}"
    if "\0" in name or os.path.realpath(path.parent) != os.path.realpath(folder):
        raise DatasetError(f"{folder}: image id {name!r} names a file outside this folder")
    return path


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


# EXIF's orientation tag, and its values that turn the stored image by 90 degrees (mirrored or
# not): the displayed image is the stored one with width and height swapped.
EXIF_ORIENTATION = 0x0112
_TURNING = (5, 6, 7, 8)
# Image modes of 8 bits per channel, which convert to RGB as they are.
_8BIT_MODES = ("1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr")
# 16-bit greyscale PNGs: read at their full range, value / 257 (65535 = 255 * 257).
_GRAY_16BIT_MODES = ("I;16", "I;16B", "I;16L")


@contextlib.contextmanager
def open_image(path, error=DatasetError, what="image file", missing=None):
    """`Image.open(path)`, every way the file can fail to open or decode an `error` (an
    I2CRCError class) naming it: missing (`missing`, default "<what> is missing"), unreadable,
    or larger than Pillow's limit, whose DecompressionBombError (a tiny PNG of 30000x30000
    pixels that decodes to gigabytes) would otherwise end the job in a traceback."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            yield image
    except FileNotFoundError:
        raise error(f"{path}: {missing or f'{what} is missing'}") from None
    except Image.DecompressionBombError as bomb:
        # Pillow says "Image size (N pixels) exceeds limit of L pixels, ..."; the limit is its
        # MAX_IMAGE_PIXELS x 2, checked from the header before anything is decoded.
        pixels = int(str(bomb).split("(", 1)[1].split(" ", 1)[0])
        raise error(
            f"{path}: {what} of {pixels / 1e6:,.0f} megapixels is larger than the limit of "
            f"{2 * Image.MAX_IMAGE_PIXELS / 1e6:,.0f} megapixels (Pillow's guard against "
            "decompression bombs)"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError) as failure:
        raise error(f"{path}: {what} is unreadable or corrupt ({failure})") from None


def _levels_16_to_8(image) -> np.ndarray:
    return np.round(np.array(image) / 257).astype(np.uint8)


def image_header(path, missing=None) -> tuple[tuple[int, int], int]:
    """((H, W) as stored, EXIF orientation: 1 = as stored) of an image, without decoding it (a
    PNG whose EXIF follows its pixels is decoded to find it)."""
    with open_image(path, missing=missing) as image:
        width, height = image.size
        orientation = image.getexif().get(EXIF_ORIENTATION)
    # 1 is "as stored"; a value outside 1..8 (some cameras write 0) means nothing.
    return (height, width), orientation if orientation in range(2, 9) else 1


def displayed_size(size_hw: tuple[int, int], orientation: int) -> tuple[int, int]:
    """(H, W) of an image of stored size `size_hw` as a viewer shows it (EXIF orientation)."""
    return size_hw[::-1] if orientation in _TURNING else size_hw


def read_image(path, *, displayed: bool = False) -> np.ndarray:
    """Read an RGB image as uint8 (H, W, 3): its stored pixels, or with `displayed` as a viewer
    shows it (its EXIF orientation applied). A 16-bit greyscale PNG is read at its full range;
    other modes beyond 8 bits per channel (32-bit integer, float) are refused: converting them
    would clip every value above 255 (a white image)."""
    with open_image(path) as image:
        if displayed:
            image = ImageOps.exif_transpose(image)
        if image.mode in _GRAY_16BIT_MODES:
            return np.repeat(_levels_16_to_8(image)[..., None], 3, axis=2)
        if image.mode not in _8BIT_MODES:
            raise DatasetError(
                f"{path}: image has mode {image.mode}; expected 8 bits per channel (RGB, "
                "greyscale, palette, CMYK) or a 16-bit greyscale PNG"
            )
        # np.array, not asarray: PIL hands out a read-only buffer, and callers
        # (torch.from_numpy, in-place edits) need a writable array.
        return np.array(image.convert("RGB"))


def read_label(path, num_classes: int) -> np.ndarray:
    """Read a single-channel or palette label PNG as uint8 (H, W) with values in {0..C, 255}."""
    path = Path(path)
    with open_image(path, what="label file") as image:
        if image.mode not in ("P", "L"):
            raise DatasetError(
                f"{path}: label PNG must be single-channel or palette, found mode {image.mode}"
            )
        label = np.array(image)  # writable (see read_image)
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


# Modes of 8-bit maps, greyscale or colour (taken as luminance).
_GRAY_8BIT_MODES = ("1", "L", "LA", "P", "PA", "RGB", "RGBA")


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
    with open_image(path, SaliencyError, "saliency map") as image:
        if image.mode in _GRAY_16BIT_MODES:
            return _levels_16_to_8(image)
        if image.mode not in _GRAY_8BIT_MODES:
            raise SaliencyError(
                f"{path}: saliency map has image mode {image.mode}; expected an 8-bit or "
                "16-bit greyscale PNG (or 8-bit colour)"
            )
        return np.array(image.convert("L"))  # writable (see read_image)


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
