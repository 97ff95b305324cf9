"""Fetching assets: resumable, checksum-verified downloads and safe archive extraction.

`download` streams a URL (or copies a local file / file:// URL) into ``<dest>.part``, resumes
an interrupted transfer with an HTTP ``Range`` request, retries transient failures (connection
errors, timeouts, 5xx, truncated bodies) with exponential backoff, verifies the sha256 and only
then renames the ``.part`` file onto ``dest``. So ``dest`` exists only once it is complete and
verified; a ``.part`` file left by an interrupted or network-failed run is picked up by the
next one.

`extract_archive` unpacks a .tar / .tar.gz / .tgz / .tar.bz2 / .tar.xz / .zip archive into a
temporary folder beside the output and renames it into place at the end, refusing members that
would land outside the output (absolute paths, ``..``, links pointing out).

`fetch_saliency` combines both for the saliency maps of the pipeline (e.g. the OAA
``saliency_aug`` archive).

Every failure raises `FetchError` (or `ConfigError` for a bad source description) whose message
names the URL or file and what went wrong.
"""

import hashlib
import http.client
import os
import posixpath
import re
import shutil
import stat
import tarfile
import time
import zipfile
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.error import HTTPError, URLError
from urllib.parse import unquote, urlparse
from urllib.request import Request, url2pathname, urlopen

from .errors import ConfigError, FetchError
from .fileio import atomic_directory

__all__ = [
    "ChecksumMismatch",
    "download",
    "extract_archive",
    "fetch_saliency",
    "is_archive_name",
    "sha256_file",
    "url_filename",
]

_CHUNK = 1 << 20
_HEX = re.compile(r"^[0-9a-f]+$")
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
_USER_AGENT = "i2crc-fetch/1"

# Indirection so tests can skip the backoff waits.
_sleep = time.sleep


class ChecksumMismatch(FetchError):
    """The downloaded bytes do not have the expected sha256."""


class _Retryable(Exception):
    """An attempt failed in a way another attempt may fix (network, 5xx, truncation)."""


# --------------------------------------------------------------------------------------------
# Downloads
# --------------------------------------------------------------------------------------------


def sha256_file(path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def url_filename(url) -> str:
    """The last path component of a URL or local path ('' when it has none)."""
    url = str(url)
    parsed = urlparse(url)
    if parsed.scheme in ("http", "https", "ftp", "file"):
        return posixpath.basename(unquote(parsed.path))
    return Path(url).name


def is_archive_name(name) -> bool:
    """Whether a file name ends in a suffix `extract_archive` handles."""
    return _kind_from_name(str(name)) is not None


def _kind_from_name(name: str):
    lower = name.lower()
    for suffix, kind in _ARCHIVE_SUFFIXES.items():
        if lower.endswith(suffix):
            return kind
    return None


def _normalise_digest(url: str, value, *, full: bool):
    if value is None:
        return None
    text = str(value).strip().lower()
    if not _HEX.match(text) or (full and len(text) != 64) or len(text) > 64:
        what = "64 hex digits" if full else "at most 64 hex digits"
        raise FetchError(f"{url}: expected sha256 must be {what}, got {value!r}")
    return text


def _digest_problem(actual: str, sha256, prefix):
    if sha256 is not None and actual != sha256:
        return f"sha256 is {actual}, expected {sha256}"
    if prefix is not None and not actual.startswith(prefix):
        return f"sha256 is {actual}, expected it to start with {prefix}"
    return None


def _local_source(url: str):
    """The local path a file:// URL or a plain path names; None for a remote URL."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise FetchError(f"{url}: file:// URLs on another host are not supported")
        return Path(url2pathname(unquote(parsed.path)))
    if parsed.scheme in ("http", "https"):
        return None
    if parsed.scheme == "" or len(parsed.scheme) == 1:  # plain path (or a drive letter)
        return Path(url).expanduser()
    raise FetchError(f"{url}: unsupported URL scheme '{parsed.scheme}' (use http, https or file)")


def download(
    url,
    dest,
    *,
    sha256=None,
    retries: int = 3,
    timeout: float = 30,
    backoff: float = 0.5,
    sha256_prefix=None,
) -> Path:
    """Download `url` to `dest` and return `dest`, verified.

    `url` is an http(s) URL, a file:// URL or a local path (copied). The bytes go to
    ``dest.name + ".part"`` beside `dest`; an existing ``.part`` (an earlier run was interrupted)
    is resumed with a ``Range: bytes=N-`` request (a server that ignores Range and answers 200
    restarts the file from byte 0). Connection errors, timeouts, HTTP 5xx/408/429 and truncated
    bodies (fewer bytes than Content-Length) are retried up to `retries` more times, waiting
    ``backoff * 2**k`` seconds; other 4xx statuses fail at once. If every attempt fails the
    ``.part`` file is kept so that a rerun resumes it.

    With `sha256` (64 hex digits) or `sha256_prefix` (the leading digits, as torchvision
    embeds in its file names) the finished file is checked; a mismatch deletes the ``.part`` and
    raises `ChecksumMismatch` (a FetchError) "URL: sha256 is X, expected Y". Only then is the
    file renamed onto `dest`, so `dest` never exists unverified.

    If `dest` already exists it is reused when it matches the given checksum (or when none is
    given); a mismatching `dest` is deleted and downloaded again.
    """
    url = str(url)
    dest = Path(dest)
    sha256 = _normalise_digest(url, sha256, full=True)
    sha256_prefix = _normalise_digest(url, sha256_prefix, full=False)
    if retries < 0:
        raise ValueError("retries must be >= 0")
    source = _local_source(url)

    if dest.is_dir():
        raise FetchError(f"{url}: destination {dest} is a folder")
    if dest.exists():
        if sha256 is None and sha256_prefix is None:
            return dest
        if _digest_problem(sha256_file(dest), sha256, sha256_prefix) is None:
            return dest
        dest.unlink()

    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    if source is not None:
        _copy_local(url, source, part)
    else:
        _http_download(url, part, retries=retries, timeout=timeout, backoff=backoff)

    problem = _digest_problem(sha256_file(part), sha256, sha256_prefix)
    if problem is not None:
        part.unlink(missing_ok=True)
        raise ChecksumMismatch(f"{url}: {problem}")
    os.replace(part, dest)
    return dest


def _copy_local(url: str, source: Path, part: Path) -> None:
    if source.is_dir():
        raise FetchError(f"{url}: is a folder, not a file")
    if not source.is_file():
        raise FetchError(f"{url}: file not found")
    try:
        shutil.copyfile(source, part)
    except OSError as error:
        part.unlink(missing_ok=True)
        raise FetchError(f"{url}: cannot copy to {part}: {error}") from None


def _http_download(url: str, part: Path, *, retries: int, timeout: float, backoff: float):
    attempts = retries + 1
    failures = []
    for attempt in range(attempts):
        if attempt:
            _sleep(backoff * 2 ** (attempt - 1))
        try:
            _http_attempt(url, part, timeout)
            return
        except _Retryable as error:
            failures.append(str(error))
    kept = f"; the partial file {part} is kept and resumed by a rerun" if part.exists() else ""
    raise FetchError(
        f"{url}: download failed after {attempts} attempt(s), last error: {failures[-1]}{kept}"
    )


def _content_range(header):
    """(start, total) of a Content-Range header; None parts when absent or unparsable."""
    match = re.match(r"^\s*bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)\s*$", header or "")
    if not match:
        return None, None
    start = int(match.group(1)) if match.group(1) is not None else None
    total = int(match.group(2)) if match.group(2) != "*" else None
    return start, total


def _http_attempt(url: str, part: Path, timeout: float) -> None:
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = Request(url, headers=headers)
    try:
        response = urlopen(request, timeout=timeout)
    except HTTPError as error:
        code, reason = error.code, error.reason
        content_range = error.headers.get("Content-Range") if error.headers else None
        error.close()
        if code == 416 and offset:
            _, total = _content_range(content_range)
            if total == offset:  # the .part file already holds the whole file
                return
            part.unlink(missing_ok=True)
            raise _Retryable(f"HTTP 416 for a resume at byte {offset}; restarting") from None
        if code >= 500 or code in (408, 429):
            raise _Retryable(f"HTTP {code} {reason}") from None
        part.unlink(missing_ok=True)
        raise FetchError(f"{url}: HTTP {code} {reason}") from None
    except (URLError, OSError, http.client.HTTPException) as error:
        reason = getattr(error, "reason", None) or error
        raise _Retryable(f"cannot connect: {reason}") from None

    with response:
        status = response.status
        if status == 206:
            start, _ = _content_range(response.headers.get("Content-Range"))
            if start != offset:
                part.unlink(missing_ok=True)
                raise _Retryable(
                    f"server answered a resume at byte {offset} with bytes from {start}; "
                    "restarting"
                )
            mode = "ab"
        elif status == 200:
            mode, offset = "wb", 0  # no resume (first attempt, or Range ignored)
        else:
            raise FetchError(f"{url}: unexpected HTTP status {status}")
        length = response.headers.get("Content-Length")
        expected = int(length) if length and length.strip().isdigit() else None
        received = 0
        with open(part, mode) as out:
            while True:
                try:
                    chunk = response.read(_CHUNK)
                except (OSError, http.client.HTTPException) as error:
                    raise _Retryable(
                        f"connection lost after {offset + received} bytes: {error!r}"
                    ) from None
                if not chunk:
                    break
                out.write(chunk)
                received += len(chunk)
    if expected is not None and received < expected:
        raise _Retryable(
            f"truncated transfer: got {offset + received} of {offset + expected} bytes"
        )


# --------------------------------------------------------------------------------------------
# Archives
# --------------------------------------------------------------------------------------------


@dataclass
class _Entry:
    parts: tuple
    is_dir: bool
    open: Callable[[], IO[bytes]] | None = None


_CORRUPT = (
    tarfile.TarError,
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    RuntimeError,  # zipfile: encrypted member
    NotImplementedError,  # zipfile: unsupported compression
    KeyError,  # a link whose target is not in the archive
)


def _split_member(archive: Path, name: str) -> tuple:
    """The path components of a member name; FetchError when it would escape the output."""
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise FetchError(f"{archive}: unsafe member '{name}' (absolute path); refusing to extract")
    parts = tuple(p for p in re.split(r"[\\/]+", name) if p not in ("", "."))
    if ".." in parts:
        raise FetchError(f"{archive}: unsafe member '{name}' ('..' in path); refusing to extract")
    return parts


def _check_link(archive: Path, name: str, target: str, *, relative_to_member: bool) -> str:
    """The archive-internal path a link points to; FetchError when it points outside."""
    if target.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", target):
        raise FetchError(
            f"{archive}: unsafe link '{name}' -> '{target}' (absolute target); refusing to extract"
        )
    base = posixpath.dirname(name) if relative_to_member else ""
    joined = posixpath.normpath(posixpath.join(base, target.replace("\\", "/")))
    if joined == ".." or joined.startswith("../"):
        raise FetchError(
            f"{archive}: unsafe link '{name}' -> '{target}' (points outside the archive); "
            "refusing to extract"
        )
    return joined


def _tar_entries(archive: Path, tar: tarfile.TarFile) -> list:
    entries = []
    for member in tar.getmembers():
        parts = _split_member(archive, member.name)
        if not parts:
            continue
        if member.isdir():
            entries.append(_Entry(parts, True))
        elif member.isfile():
            entries.append(_Entry(parts, False, lambda m=member: tar.extractfile(m)))
        elif member.issym() or member.islnk():
            _check_link(archive, member.name, member.linkname, relative_to_member=member.issym())
            # tarfile follows a link to its target member; the output gets a plain copy.
            entries.append(_Entry(parts, False, lambda m=member: tar.extractfile(m)))
        else:
            raise FetchError(
                f"{archive}: member '{member.name}' is a device or fifo; refusing to extract"
            )
    return entries


def _zip_entries(archive: Path, zf: zipfile.ZipFile) -> list:
    entries = []
    by_name = {}
    for info in zf.infolist():
        by_name[posixpath.normpath(info.filename.replace("\\", "/"))] = info
    for info in zf.infolist():
        parts = _split_member(archive, info.filename)
        if not parts:
            continue
        if info.is_dir():
            entries.append(_Entry(parts, True))
        elif stat.S_ISLNK(info.external_attr >> 16):
            target = zf.read(info).decode("utf-8", "replace")
            resolved = _check_link(archive, info.filename, target, relative_to_member=True)
            if resolved not in by_name:
                raise FetchError(
                    f"{archive}: link '{info.filename}' -> '{target}' points to a missing member"
                )
            entries.append(_Entry(parts, False, lambda i=by_name[resolved]: zf.open(i)))
        else:
            entries.append(_Entry(parts, False, lambda i=info: zf.open(i)))
    return entries


def _select(archive: Path, entries: list, member_prefix) -> list:
    # macOS zip tools add resource-fork folders that are never maps.
    entries = [e for e in entries if e.parts[0] != "__MACOSX"]
    if member_prefix is not None:
        prefix = _split_member(archive, str(member_prefix))
        depth = len(prefix)
        entries = [
            _Entry(e.parts[depth:], e.is_dir, e.open)
            for e in entries
            if len(e.parts) > depth and e.parts[:depth] == prefix
        ]
        if not any(not e.is_dir for e in entries):
            raise FetchError(
                f"{archive}: no file under member prefix '{member_prefix}' "
                "(check saliency.member_prefix against the archive's layout)"
            )
        return entries
    # Flatten single top-level folders: 'saliency_aug/x.png' -> 'x.png'.
    while True:
        files = [e for e in entries if not e.is_dir]
        tops = {e.parts[0] for e in entries}
        if not files or len(tops) != 1 or any(len(e.parts) < 2 for e in files):
            return entries
        entries = [_Entry(e.parts[1:], e.is_dir, e.open) for e in entries if len(e.parts) > 1]


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


def extract_archive(archive, out_dir, *, member_prefix=None, require_png: bool = False) -> list:
    """Extract a .zip / .tar / .tar.gz / .tgz (also .tar.bz2 / .tar.xz) into `out_dir`.

    Returns the sorted paths of the PNG files now in `out_dir`.

    Layout: with `member_prefix` (e.g. ``"saliency_aug"``) only the members under that folder
    are extracted and the prefix is stripped. Without it, a single top-level folder holding
    everything (``maps/…`` or ``VOC/saliency_aug/…``) is flattened away, repeatedly, so the maps
    land directly in `out_dir`; an archive with several top-level entries keeps its layout.
    Regular files and folders are extracted; links pointing inside the archive become plain
    copies of their target. ``__MACOSX`` folders are skipped.

    Safety: absolute member paths, ``..`` components and links pointing outside the archive
    raise FetchError before anything is written. The archive is extracted into a temporary
    folder beside `out_dir` which replaces `out_dir` (as a whole) only on success; on any failure
    (corrupt or truncated archive, unsafe member, no PNG with `require_png`) the temporary
    folder is removed and `out_dir` is left as it was.
    """
    archive = Path(archive)
    out_dir = Path(out_dir)
    if not archive.is_file():
        raise FetchError(f"{archive}: archive file not found")
    if out_dir.exists() and not out_dir.is_dir():
        raise FetchError(f"{out_dir}: exists and is not a folder")
    kind = _archive_kind(archive)
    with atomic_directory(out_dir) as tmp:
        try:
            if kind == "zip":
                with zipfile.ZipFile(archive) as zf:
                    entries = _select(archive, _zip_entries(archive, zf), member_prefix)
                    _write_entries(archive, tmp, entries)
            else:
                with tarfile.open(archive, "r:*") as tar:
                    entries = _select(archive, _tar_entries(archive, tar), member_prefix)
                    _write_entries(archive, tmp, entries)
        except FetchError:  # unsafe member, write failure: already clear
            raise
        except (*_CORRUPT, OSError) as error:
            raise FetchError(f"{archive}: corrupt or truncated archive ({error!r})") from None
        if require_png and not _png_files(tmp):
            raise FetchError(f"{archive}: holds no PNG files")
    return _png_files(out_dir)


def _write_entries(archive: Path, root: Path, entries: list) -> None:
    if not any(not e.is_dir for e in entries):
        raise FetchError(f"{archive}: archive holds no files")
    for entry in entries:
        target = root.joinpath(*entry.parts)
        if entry.is_dir:
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        source = entry.open()
        if source is None:
            raise FetchError(f"{archive}: cannot read member '{'/'.join(entry.parts)}'")
        try:
            out = open(target, "wb")
        except OSError as error:
            raise FetchError(f"{archive}: cannot write {target}: {error}") from None
        with source, out:
            while block := source.read(_CHUNK):
                try:
                    out.write(block)
                except OSError as error:
                    raise FetchError(f"{archive}: cannot write {target}: {error}") from None


# --------------------------------------------------------------------------------------------
# Saliency maps
# --------------------------------------------------------------------------------------------


def fetch_saliency(source: Mapping, out_dir, cache_dir) -> Path:
    """Download a saliency-map archive into `cache_dir` and extract its maps into `out_dir`.

    `source` holds ``url`` (http(s), file:// or a local path; required), ``sha256`` (optional,
    64 hex digits, checked after download), ``archive`` (True / False / None: None decides by
    the file name's suffix) and optionally ``member_prefix`` (see `extract_archive`). The
    download is cached under its URL file name and reused by later runs. A source that is a
    single file rather than an archive is a ConfigError. Returns `out_dir`.
    """
    if not isinstance(source, Mapping):
        raise ConfigError(f"saliency source must be a mapping with 'url', got {source!r}")
    url = source.get("url")
    if not url:
        raise ConfigError("config key 'saliency.url': required to fetch saliency maps")
    url = str(url)
    sha256 = source.get("sha256")
    if sha256 is not None:
        text = str(sha256).strip().lower()
        if len(text) != 64 or not _HEX.match(text):
            raise ConfigError(
                f"config key 'saliency.sha256': must be 64 hex digits, got {sha256!r}"
            )
    flag = source.get("archive")
    name = url_filename(url)
    if not name:
        raise ConfigError(f"config key 'saliency.url': {url} does not end in a file name")
    if flag is False or (flag is None and not is_archive_name(name)):
        raise ConfigError(
            f"saliency source {url} is a single file, not an archive of maps: give a .zip, "
            ".tar or .tar.gz archive (set saliency.archive: true if its name has no archive "
            "suffix), or point saliency.folder at a folder of maps"
        )
    cached = download(url, Path(cache_dir) / name, sha256=sha256)
    extract_archive(cached, out_dir, member_prefix=source.get("member_prefix"), require_png=True)
    return Path(out_dir)
