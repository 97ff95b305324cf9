"""Fetching assets: resumable, checksum-verified downloads and safe archive extraction.

`download` streams a URL (or copies a local file / file:// URL) into ``<dest>.part``, resumes
an interrupted transfer with an HTTP ``Range`` request, retries transient failures (connection
errors, timeouts, 5xx, truncated bodies) with exponential backoff, verifies the sha256 and/or
md5 and only then renames the ``.part`` file onto ``dest``. So ``dest`` exists only once it is
complete and verified; a ``.part`` file left by an interrupted or network-failed run is picked up
by the next one. Google Drive links go through the ``gdown`` package (which resumes too) and are
verified by the same code afterwards.

`extract_archive` unpacks a .tar / .tar.gz / .tgz / .tar.bz2 / .tar.xz / .zip archive into a
temporary folder beside the output and renames it into place at the end. Tar members go
through the standard library's ``"data"`` extraction filter (no member or link may land
outside the output, no device files); zipfile has no such filter but already strips absolute
paths, so zip members only need the ``..`` check.

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
import tarfile
import tempfile
import time
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.parse import unquote, urlparse
from urllib.request import Request, url2pathname, urlopen

from .errors import ConfigError, FetchError
from .fileio import atomic_directory

__all__ = [
    "ChecksumMismatch",
    "download",
    "drive_file_id",
    "extract_archive",
    "fetch_saliency",
    "is_archive_name",
    "url_filename",
]

_CHUNK = 1 << 20
_HEX = re.compile(r"^[0-9a-f]+$")
_DIGEST_LENGTHS = {"sha256": 64, "md5": 32}
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
_DRIVE_HOSTS = ("drive.google.com", "docs.google.com")

# Indirection so tests can skip the backoff waits.
_sleep = time.sleep


class ChecksumMismatch(FetchError):
    """The downloaded bytes do not have the expected checksum."""


class _Retryable(Exception):
    """An attempt failed in a way another attempt may fix (network, 5xx, truncation)."""


# --------------------------------------------------------------------------------------------
# Downloads
# --------------------------------------------------------------------------------------------


def url_filename(url) -> str:
    """The last path component of a URL or local path ('' when it has none)."""
    url = str(url)
    parsed = urlparse(url)
    if parsed.scheme in ("http", "https", "ftp", "file"):
        return posixpath.basename(unquote(parsed.path))
    return Path(url).name


def drive_file_id(url) -> str | None:
    """The file id of a Google Drive file link (``/file/d/<id>/view``, ``open?id=<id>``,
    ``uc?id=<id>``), None for any other URL; FetchError for a Drive link naming no file."""
    if urlparse(str(url)).hostname not in _DRIVE_HOSTS:
        return None
    from gdown.parse_url import parse_url

    file_id, _ = parse_url(str(url))
    if not file_id:
        raise FetchError(f"{url}: a Google Drive link, but not to a single file")
    return file_id


def is_archive_name(name) -> bool:
    """Whether a file name ends in a suffix `extract_archive` handles."""
    return _kind_from_name(str(name)) is not None


def _kind_from_name(name: str):
    lower = name.lower()
    for suffix, kind in _ARCHIVE_SUFFIXES.items():
        if lower.endswith(suffix):
            return kind
    return None


def _expected_digests(url: str, **given) -> dict:
    """{algorithm: lower-case hex} of the checksums given; FetchError for a malformed one."""
    expected = {}
    for algorithm, value in given.items():
        if value is None:
            continue
        text = str(value).strip().lower()
        length = _DIGEST_LENGTHS[algorithm]
        if len(text) != length or not _HEX.match(text):
            raise FetchError(
                f"{url}: expected {algorithm} must be {length} hex digits, got {value!r}"
            )
        expected[algorithm] = text
    return expected


def _digest_problem(path: Path, expected: dict):
    for algorithm, wanted in expected.items():
        with open(path, "rb") as handle:
            actual = hashlib.file_digest(handle, algorithm).hexdigest()
        if actual != wanted:
            return f"{algorithm} is {actual}, expected {wanted}"
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
    md5=None,
    retries: int = 3,
    timeout: float = 30,
    backoff: float = 0.5,
) -> Path:
    """Download `url` to `dest` and return `dest`, verified.

    `url` is an http(s) URL, a Google Drive file link, a file:// URL or a local path (copied).
    The bytes go to ``dest.name + ".part"`` beside `dest`; an existing ``.part`` (an earlier run
    was interrupted) is resumed with a ``Range: bytes=N-`` request (a server that ignores Range
    and answers 200 restarts the file from byte 0). Connection errors, timeouts, HTTP
    5xx/408/429 and truncated bodies (fewer bytes than Content-Length) are retried up to
    `retries` more times, waiting ``backoff * 2**k`` seconds; other 4xx statuses fail at once.
    If every attempt fails the ``.part`` file is kept so that a rerun resumes it. A Drive link is
    downloaded by ``gdown`` (resume and retries are its own) into the same ``.part`` file.

    With `sha256` (64 hex digits) and/or `md5` (32 hex digits) the finished file is checked; a
    mismatch deletes the ``.part`` and raises `ChecksumMismatch` (a FetchError) "URL: sha256 is
    X, expected Y". Only then is the file renamed onto `dest`, so `dest` never exists unverified.

    If `dest` already exists it is reused when it matches the given checksums (or when none is
    given); a mismatching `dest` is deleted and downloaded again.
    """
    url = str(url)
    dest = Path(dest)
    expected = _expected_digests(url, sha256=sha256, md5=md5)
    if retries < 0:
        raise ValueError("retries must be >= 0")
    source = _local_source(url)

    if dest.is_dir():
        raise FetchError(f"{url}: destination {dest} is a folder")
    if dest.exists():
        if _digest_problem(dest, expected) is None:
            return dest
        dest.unlink()

    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    if source is not None:
        _copy_local(url, source, part)
    elif (file_id := drive_file_id(url)) is not None:
        _drive_download(url, file_id, part, retries=retries, timeout=timeout)
    else:
        _http_download(url, part, retries=retries, timeout=timeout, backoff=backoff)

    problem = _digest_problem(part, expected)
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


def _drive_download(url: str, file_id: str, part: Path, *, retries: int, timeout: float):
    import gdown

    try:
        gdown.download(
            id=file_id, output=str(part), quiet=True, resume=True, retries=retries,
            timeout=timeout,
        )
    except (gdown.exceptions.DownloadError, OSError) as error:
        detail = " ".join(str(error).split())  # gdown's messages span several lines
        raise FetchError(f"{url}: Google Drive download failed: {detail}") from None


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

_CORRUPT = (
    tarfile.TarError,
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    RuntimeError,  # zipfile: encrypted member
    NotImplementedError,  # zipfile: unsupported compression
    KeyError,  # a link whose target is not in the archive
)


def _member_parts(name: str) -> tuple:
    return tuple(p for p in name.replace("\\", "/").split("/") if p not in ("", "."))


def _selector(member_prefix):
    """Whether a member name is extracted: under `member_prefix` if given, never __MACOSX."""
    prefix = _member_parts(str(member_prefix)) if member_prefix is not None else ()

    def wanted(name: str) -> bool:
        parts = _member_parts(name)
        return bool(parts) and parts[0] != "__MACOSX" and parts[: len(prefix)] == prefix

    return wanted, prefix


def _extract_tar(archive: Path, raw: Path, wanted) -> None:
    def data_filter(member, path):
        return tarfile.data_filter(member, path) if wanted(member.name) else None

    with tarfile.open(archive, "r:*") as tar:
        tar.extractall(raw, filter=data_filter)


def _extract_zip(archive: Path, raw: Path, wanted) -> None:
    with zipfile.ZipFile(archive) as zf:
        members = [info for info in zf.infolist() if wanted(info.filename)]
        for info in members:
            if ".." in _member_parts(info.filename):
                raise FetchError(
                    f"{archive}: unsafe member '{info.filename}' ('..' in path); "
                    "refusing to extract"
                )
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


def extract_archive(archive, out_dir, *, member_prefix=None, require_png: bool = False) -> list:
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
    writes links as plain files). The archive is extracted into temporary folders beside
    `out_dir`, which replace `out_dir` (as a whole) only on success; on any failure (corrupt or
    truncated archive, unsafe member, no PNG with `require_png`) they are removed and `out_dir`
    is left as it was.
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
    with atomic_directory(out_dir) as staging, tempfile.TemporaryDirectory(
        prefix=f".{out_dir.name}.", suffix=".raw", dir=out_dir.parent, ignore_cleanup_errors=True
    ) as raw:
        raw = Path(raw)
        try:
            (_extract_zip if kind == "zip" else _extract_tar)(archive, raw, wanted)
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


# --------------------------------------------------------------------------------------------
# Saliency maps
# --------------------------------------------------------------------------------------------


def fetch_saliency(source: Mapping, out_dir, cache_dir) -> Path:
    """Download a saliency-map archive into `cache_dir` and extract its maps into `out_dir`.

    `source` holds ``url`` (http(s), a Google Drive file link, file:// or a local path;
    required), ``sha256`` (optional, 64 hex digits, checked after download), ``archive`` (True /
    False / None: None decides by the file name's suffix, or for a Drive link by the content)
    and optionally ``member_prefix`` (see `extract_archive`). The download is cached under its
    URL file name (``drive-<id>`` for a Drive link) and reused by later runs. A source that is
    a single file rather than an archive is a ConfigError. Returns `out_dir`.
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
    file_id = drive_file_id(url)
    name = f"drive-{file_id}" if file_id else url_filename(url)
    if not name:
        raise ConfigError(f"config key 'saliency.url': {url} does not end in a file name")
    if flag is False or (flag is None and not file_id and not is_archive_name(name)):
        raise ConfigError(
            f"saliency source {url} is a single file, not an archive of maps: give a .zip, "
            ".tar or .tar.gz archive (set saliency.archive: true if its name has no archive "
            "suffix), or point saliency.folder at a folder of maps"
        )
    cached = download(url, Path(cache_dir) / name, sha256=sha256)
    extract_archive(cached, out_dir, member_prefix=source.get("member_prefix"), require_png=True)
    return Path(out_dir)
