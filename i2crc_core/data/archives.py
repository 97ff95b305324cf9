"""Archives: safe extraction of .tar / .tar.gz / .tgz / .tar.bz2 / .tar.xz / .zip files.

`extract_archive` unpacks an archive into a temporary folder beside the output and renames it
into place at the end. Tar members go through the standard library's ``"data"`` extraction
filter (no member or link may land outside the output, no device files); zipfile has no such
filter but already strips absolute paths, so zip members only need the ``..`` check.

Every failure raises `FetchError` whose message names the archive and what went wrong.
"""

import os
import stat
import tarfile
import tempfile
import zipfile
import zlib
from pathlib import Path

from ..infra.errors import FetchError
from ..infra.fileio import atomic_directory

__all__ = ["extract_archive", "is_archive_name"]

_ARCHIVE_SUFFIXES = {
    ".zip": "zip",
    ".tar": "tar",
    ".tar.gz": "tar",
    ".tgz": "tar",
    ".tar.bz2": "tar",
    ".tbz2": "tar",
    ".tar.xz": "tar",
    ".txz": "tar",
}

_CORRUPT = (
    tarfile.TarError,
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    RuntimeError,  # zipfile: encrypted member
    NotImplementedError,  # zipfile: unsupported compression
    KeyError,  # a link whose target is not in the archive
)


def is_archive_name(name) -> bool:
    """Whether a file name ends in a suffix `extract_archive` handles."""
    return _kind_from_name(str(name)) is not None


def _kind_from_name(name: str):
    lower = name.lower()
    for suffix, kind in _ARCHIVE_SUFFIXES.items():
        if lower.endswith(suffix):
            return kind
    return None


def _member_parts(name: str) -> tuple:
    return tuple(p for p in name.replace("\\", "/").split("/") if p not in ("", "."))


def _selector(member_prefix):
    """Whether a member name is extracted: under `member_prefix` if given, never __MACOSX."""
    prefix = _member_parts(str(member_prefix)) if member_prefix is not None else ()

    def wanted(name: str) -> bool:
        parts = _member_parts(name)
        return bool(parts) and parts[0] != "__MACOSX" and parts[: len(prefix)] == prefix

    return wanted, prefix


def _link_refused(archive: Path, name: str, kind: str, target: str) -> FetchError:
    return FetchError(
        f"{archive}: member '{name}' is a {kind} (to '{target}'); this archive may hold regular "
        "files only, and a link can point outside the run's folders once the archive's top "
        "folders are stripped"
    )


def _extract_tar(archive: Path, raw: Path, wanted, links: bool) -> None:
    def data_filter(member, path):
        if not wanted(member.name):
            return None
        if not links and (member.issym() or member.islnk()):
            kind = "symbolic link" if member.issym() else "hard link"
            raise _link_refused(archive, member.name, kind, member.linkname)
        return tarfile.data_filter(member, path)

    with tarfile.open(archive, "r:*") as tar:
        tar.extractall(raw, filter=data_filter)


def _extract_zip(archive: Path, raw: Path, wanted, links: bool) -> None:
    with zipfile.ZipFile(archive) as zf:
        members = [info for info in zf.infolist() if wanted(info.filename)]
        for info in members:
            if ".." in _member_parts(info.filename):
                raise FetchError(
                    f"{archive}: unsafe member '{info.filename}' ('..' in path); "
                    "refusing to extract"
                )
            # zipfile writes a link as a file holding its target: no escape, but not a map.
            if not links and stat.S_ISLNK(info.external_attr >> 16):
                target = zf.read(info).decode("utf-8", "replace")
                raise _link_refused(archive, info.filename, "symbolic link", target)
        zf.extractall(raw, members=members)


def _content_root(archive: Path, raw: Path, prefix: tuple, member_prefix) -> Path:
    """The extracted folder that becomes the output: the member prefix, or else the archive's
    single top-level folder, repeatedly ('VOC/saliency_aug/x.png' -> 'x.png')."""
    if prefix:
        root = raw.joinpath(*prefix)
        if not root.is_dir() or not any(p.is_file() for p in root.rglob("*")):
            raise FetchError(
                f"{archive}: no file under member prefix '{member_prefix}' "
                "(check the prefix against the archive's layout)"
            )
        return root
    root = raw
    while (
        len(entries := list(root.iterdir())) == 1
        and entries[0].is_dir()
        and not entries[0].is_symlink()
    ):
        root = entries[0]
    return root


def _archive_kind(archive: Path) -> str:
    kind = _kind_from_name(archive.name)
    if kind is not None:
        return kind
    if zipfile.is_zipfile(archive):
        return "zip"
    try:
        if tarfile.is_tarfile(archive):
            return "tar"
    except (OSError, *_CORRUPT):
        pass
    raise FetchError(f"{archive}: not a zip or tar archive (or it is corrupt)")


def _png_files(folder: Path) -> list:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() == ".png")


def extract_archive(
    archive, out_dir, *, member_prefix=None, require_png: bool = False, links: bool = True
) -> list:
    """Extract a .zip / .tar / .tar.gz / .tgz (also .tar.bz2 / .tar.xz) into `out_dir`.

    Returns the sorted paths of the PNG files now in `out_dir`.

    Layout: with `member_prefix` (e.g. ``"saliency_aug"``) only the members under that folder
    are extracted and the prefix is stripped. Without it, a single top-level folder holding
    everything (``maps/…`` or ``VOC/saliency_aug/…``) is flattened away, repeatedly, so the maps
    land directly in `out_dir`; an archive with several top-level entries keeps its layout.
    ``__MACOSX`` folders are skipped.

    Safety: tar members pass the standard library's ``"data"`` filter, which refuses members
    and links that would land outside the output and device files (absolute names are made
    relative); zip members with ``..`` are refused (zipfile strips absolute paths itself and
    writes links as plain files). With `links` False, a link member (symbolic or hard) is refused
    as a whole: the data filter passes a link that stays inside the extraction folder, which may
    point outside once the single top folders are stripped. The archive is extracted into
    temporary folders beside `out_dir`, which replace `out_dir` (as a whole) only on success; on
    any failure (corrupt or truncated archive, unsafe member, no PNG with `require_png`) they
    are removed and `out_dir` is left as it was.
    """
    archive = Path(archive)
    out_dir = Path(out_dir)
    if not archive.is_file():
        raise FetchError(f"{archive}: archive file not found")
    if out_dir.exists() and not out_dir.is_dir():
        raise FetchError(f"{out_dir}: exists and is not a folder")
    kind = _archive_kind(archive)
    wanted, prefix = _selector(member_prefix)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with (
        atomic_directory(out_dir) as staging,
        tempfile.TemporaryDirectory(
            prefix=f".{out_dir.name}.",
            suffix=".raw",
            dir=out_dir.parent,
            ignore_cleanup_errors=True,
        ) as raw,
    ):
        raw = Path(raw)
        try:
            (_extract_zip if kind == "zip" else _extract_tar)(archive, raw, wanted, links)
        except tarfile.FilterError as error:
            raise FetchError(f"{archive}: unsafe member ({error}); refusing to extract") from None
        except FetchError:
            raise
        except (*_CORRUPT, OSError) as error:
            raise FetchError(f"{archive}: corrupt or truncated archive ({error!r})") from None
        root = _content_root(archive, raw, prefix, member_prefix)
        if not any(p.is_file() for p in root.rglob("*")):
            raise FetchError(f"{archive}: archive holds no files")
        os.replace(root, staging)  # staging is an empty folder: a rename replaces it
        if require_png and not _png_files(staging):
            raise FetchError(f"{archive}: holds no PNG files")
    return _png_files(out_dir)
