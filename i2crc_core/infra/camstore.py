"""HDF5 store of class activation maps (CAMs), one dataset per image.

Layout (format ``i2crc-cams/1``):

- root attribute ``format = "i2crc-cams/1"``; a merged *virtual* store also carries
  ``shards``: the shard file names, relative to the store's own directory;
- group ``cams``: one dataset per image id, float16 of shape (K, H, W) for the image's K
  present classes, with attributes ``class_ids`` (int64, 1-based object classes, in channel
  order) and ``size`` (H, W).

Why these choices (measured by ``bench/bench_camstore.py`` on smooth 375x500 CAMs):

- float16 halves the bytes of float32 and is far finer than any threshold applied to a CAM;
- one chunk per class plane, so reading an image is K chunk reads, and one class can be
  read alone;
- LZF with the byte-shuffle filter: ~23 % of the float32 size and ~2.5 ms to read an image,
  against ~19 % and ~3 ms for gzip level 4. LZF ships with h5py (the only reader here);
  pass ``compression="gzip"`` for a store that any HDF5 tool can decompress.

Shards written in parallel are joined by `merge_cam_stores`, either into virtual datasets
that point into the shards (cheap; the shards must then stay where they are relative to the
merged file) or by copying the compressed chunks (a self-contained file).
"""

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np

from .errors import CamStoreError
from .fileio import atomic_path, ensure_room

FORMAT = "i2crc-cams/1"
GROUP = "cams"
_LIBVER = ("v110", "latest")
_COMPRESSIONS = ("lzf", "gzip")
# Room kept free beyond the data written so far: HDF5's chunk cache (1 MiB) and metadata are
# flushed on closing, and a flush that fails crashes the process instead of raising.
HEADROOM = 4 << 20
# float32 value of every float16 bit pattern: a table lookup widens a read image about twice
# as fast as `astype`, which matters next to the ~1 ms/class decompression.
_HALF_TO_SINGLE = np.arange(65536, dtype=np.uint16).view(np.float16).astype(np.float32)


def _h5_open(path, mode: str, **options) -> h5py.File:
    """h5py.File without HDF5's file locks, which many cluster NFS mounts do not support
    ("unable to lock file, errno = 37"); every store is written under a temporary name and
    renamed when complete, so no reader ever sees one being written."""
    return h5py.File(path, mode, locking=False, **options)


def _check_id(image_id, path) -> str:
    """Reject ids that cannot be an HDF5 link name (so they could never be found again)."""
    if not isinstance(image_id, str):
        raise CamStoreError(f"{path}: image id {image_id!r} is not a string")
    if image_id in ("", ".") or "/" in image_id or "\0" in image_id:
        raise CamStoreError(
            f"{path}: image id {image_id!r} cannot be stored (empty, '.', or contains '/' or NUL)"
        )
    return image_id


class CamStoreWriter:
    """Write CAMs image by image into a new store that appears at `path` only on success.

    Use as a context manager: an exception inside the ``with`` block (or a crash) leaves no
    file at `path`, so a half-written store never looks finished.
    """

    def __init__(self, path, *, compression: str = "lzf", gzip_level: int = 4):
        if compression not in _COMPRESSIONS:
            raise ValueError(f"compression must be one of {_COMPRESSIONS}, got {compression!r}")
        self.path = Path(path)
        self._compression = compression
        self._compression_opts = gzip_level if compression == "gzip" else None
        self._stack: contextlib.ExitStack | None = None
        self._file: h5py.File | None = None

    def __enter__(self) -> "CamStoreWriter":
        stack = contextlib.ExitStack()
        tmp = self._tmp = stack.enter_context(atomic_path(self.path))
        try:
            self._file = _h5_open(tmp, "w", libver=_LIBVER)
        except BaseException:
            stack.__exit__(*sys.exc_info())
            raise
        self._file.attrs["format"] = FORMAT
        self._group = self._file.create_group(GROUP)
        self._stack = stack
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        stack, self._stack = self._stack, None
        handle, self._file = self._file, None
        close_error = None
        try:
            # Closing flushes buffered chunks: it can fail (a full disk) after every write
            # succeeded, and then the store must not be renamed into place.
            handle.close()
        except BaseException as error:
            close_error = error
        if exc is None and close_error is not None:
            exc_type, exc, tb = type(close_error), close_error, close_error.__traceback__
        stack.__exit__(exc_type, exc, tb)  # removes the temporary file, or raises a StorageError
        if close_error is not None and exc is close_error:
            raise close_error
        return False

    def write(self, image_id: str, cams: np.ndarray, class_ids) -> None:
        """Store the (K, H, W) CAMs of one image and its K class ids (1-based)."""
        if self._file is None:
            raise RuntimeError("CamStoreWriter.write called outside its `with` block")
        _check_id(image_id, self.path)
        cams = np.asarray(cams)
        class_ids = np.asarray(class_ids, dtype=np.int64).reshape(-1)
        if cams.ndim != 3 or cams.shape[0] != class_ids.size:
            raise CamStoreError(
                f"{self.path}: image {image_id!r}: CAMs of shape {cams.shape} do not match "
                f"{class_ids.size} class ids (expected (K, H, W) with K = number of classes)"
            )
        if class_ids.size and (class_ids.min() < 1 or np.unique(class_ids).size != class_ids.size):
            raise CamStoreError(
                f"{self.path}: image {image_id!r}: class ids {class_ids.tolist()} must be "
                "distinct and 1-based"
            )
        half_max = np.finfo(np.float16).max
        if cams.size and not (
            np.isfinite(cams).all() and -half_max <= cams.min() and cams.max() <= half_max
        ):
            raise CamStoreError(
                f"{self.path}: image {image_id!r}: CAMs contain NaN or values beyond float16 range"
            )
        if image_id in self._group:
            raise CamStoreError(f"{self.path}: image id {image_id!r} written twice")
        half = cams.astype(np.float16)
        ensure_room(self.path, os.path.getsize(self._tmp), half.nbytes, HEADROOM)
        height, width = cams.shape[1:]
        if class_ids.size and height and width:
            dataset = self._group.create_dataset(
                image_id,
                data=half,
                chunks=(1, height, width),
                compression=self._compression,
                compression_opts=self._compression_opts,
                shuffle=True,
            )
        else:
            dataset = self._group.create_dataset(image_id, data=half)
        dataset.attrs["class_ids"] = class_ids
        dataset.attrs["size"] = np.array([height, width], dtype=np.int64)


def _open_store_file(path: Path) -> h5py.File:
    """Open a store read-only, turning every way it can be broken into one CamStoreError."""
    if not path.is_file():
        raise CamStoreError(f"{path}: CAM store is missing")
    try:
        handle = _h5_open(path, "r")
    except OSError as error:
        raise CamStoreError(
            f"{path}: CAM store is not a readable HDF5 file (truncated or corrupt: {error})"
        ) from None
    try:
        found = handle.attrs.get("format")
        if isinstance(found, bytes):
            found = found.decode("utf-8", "replace")
        if found != FORMAT:
            raise CamStoreError(
                f"{path}: not a CAM store (root attribute format={found!r}, expected {FORMAT!r})"
            )
        if not isinstance(handle.get(GROUP), h5py.Group):
            raise CamStoreError(f"{path}: CAM store has no '{GROUP}' group")
    except BaseException:
        handle.close()
        raise
    return handle


def _shard_names(handle: h5py.File) -> list[str]:
    return [
        name.decode() if isinstance(name, bytes) else str(name)
        for name in handle.attrs.get("shards", [])
    ]


class CamStore:
    """Read-only random access to a CAM store (plain or merged, virtual or copied).

    ``store[id] -> (cams float32 (K, H, W), class_ids int64 (K,))``. A virtual store checks
    on opening that every shard it points into exists and is a readable store, because HDF5
    silently fills a virtual dataset whose source is missing with the fill value.
    """

    def __init__(self, path):
        self.path = Path(path)
        self._file = _open_store_file(self.path)
        try:
            for name in _shard_names(self._file):
                shard = self.path.parent / name
                try:
                    _open_store_file(shard).close()
                except CamStoreError as error:
                    raise CamStoreError(
                        f"{self.path}: virtual CAM store points into shard {name!r}, which is "
                        f"broken: {error}"
                    ) from None
        except BaseException:
            self._file.close()
            raise
        self._group = self._file[GROUP]
        self._ids: list[str] | None = None

    def __enter__(self) -> "CamStore":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        self.close()
        return False

    def close(self) -> None:
        self._file.close()

    @property
    def ids(self) -> list[str]:
        """All image ids, sorted."""
        if self._ids is None:
            self._ids = sorted(self._group.keys())
        return self._ids

    def __len__(self) -> int:
        return len(self._group)

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids)

    def __contains__(self, image_id) -> bool:
        return (
            isinstance(image_id, str)
            and image_id not in ("", ".")
            and "/" not in image_id
            and image_id in self._group
        )

    def __getitem__(self, image_id: str) -> tuple[np.ndarray, np.ndarray]:
        if image_id not in self:
            raise CamStoreError(f"{self.path}: CAM store has no image id {image_id!r}")
        try:
            dataset = self._group[image_id]
            cams = dataset[()]
            class_ids = np.asarray(dataset.attrs["class_ids"], dtype=np.int64).reshape(-1)
        except (OSError, KeyError) as error:
            raise CamStoreError(
                f"{self.path}: CAMs of image {image_id!r} are unreadable ({error})"
            ) from None
        if cams.dtype == np.float16:
            cams = _HALF_TO_SINGLE.take(cams.view(np.uint16))
        else:
            cams = cams.astype(np.float32)
        if not np.isfinite(cams).all():
            raise CamStoreError(
                f"{self.path}: CAMs of image {image_id!r} contain NaN (a virtual store whose "
                "shard went missing, or a corrupt file)"
            )
        return cams, class_ids


def merge_cam_stores(shard_paths, out_path, mode: str = "virtual") -> None:
    """Join shard stores into one store at `out_path` (atomic).

    ``mode="virtual"``: each dataset of the output is an HDF5 virtual dataset pointing into
    its shard; shard file names are stored relative to `out_path`'s directory, so the folder
    holding the merged file and its shards can be moved, but the shards must stay beside it.
    ``mode="copy"``: the compressed chunks are copied dataset by dataset (nothing decoded,
    never more than one dataset in flight), giving a self-contained file.

    Shards must be plain stores (not themselves merged virtual stores); an id in two shards
    raises CamStoreError.
    """
    if mode not in ("virtual", "copy"):
        raise ValueError(f"merge mode must be 'virtual' or 'copy', got {mode!r}")
    out_path = Path(out_path)
    shard_paths = [Path(p) for p in shard_paths]
    owner: dict[str, Path] = {}
    shards = []
    try:
        for shard_path in shard_paths:
            handle = _open_store_file(shard_path)
            shards.append(handle)
            if _shard_names(handle):
                raise CamStoreError(
                    f"{shard_path}: is itself a virtual merged store; merge its shards instead"
                )
            for image_id in handle[GROUP].keys():
                if image_id in owner:
                    raise CamStoreError(
                        f"image id {image_id!r} is in two shards: {owner[image_id]} "
                        f"and {shard_path}"
                    )
                owner[image_id] = shard_path
        with atomic_path(out_path) as tmp, _h5_open(tmp, "w", libver=_LIBVER) as out:
            out.attrs["format"] = FORMAT
            group = out.create_group(GROUP)
            if mode == "virtual":
                names = [
                    os.path.relpath(p.resolve(), out_path.resolve().parent) for p in shard_paths
                ]
                out.attrs["shards"] = names
                for name, handle in zip(names, shards):
                    _link_virtual(handle[GROUP], group, name)
            else:
                ensure_room(out_path, 0, sum(p.stat().st_size for p in shard_paths), HEADROOM)
                for handle in shards:
                    for image_id, dataset in handle[GROUP].items():
                        handle.copy(dataset, group, name=image_id)
    finally:
        for handle in shards:
            handle.close()


def _link_virtual(source_group: h5py.Group, target_group: h5py.Group, shard_name: str) -> None:
    """Create one virtual dataset per source dataset; NaN fill marks an unreachable source.

    HDF5 reads '%' in virtual source names as a printf-style pattern, hence the '%%' escape.
    """
    file_name = shard_name.replace("%", "%%")
    for image_id, dataset in source_group.items():
        layout = h5py.VirtualLayout(shape=dataset.shape, dtype=dataset.dtype)
        if dataset.size:
            layout[...] = h5py.VirtualSource(
                file_name,
                f"{GROUP}/{image_id}".replace("%", "%%"),
                shape=dataset.shape,
                dtype=dataset.dtype,
            )
        virtual = target_group.create_virtual_dataset(image_id, layout, fillvalue=np.nan)
        for key, value in dataset.attrs.items():
            virtual.attrs[key] = value
