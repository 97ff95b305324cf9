"""Downloads: resumable, checksum-verified, from http(s), Google Drive, file:// or a path.

`download` streams a URL (or copies a local file / file:// URL) into ``<dest>.part``, resumes
an interrupted transfer with an HTTP ``Range`` request, retries transient failures (connection
errors, timeouts, 5xx, truncated bodies) with exponential backoff, verifies the sha256 and/or
md5 and only then renames the ``.part`` file onto ``dest``. So ``dest`` exists only once it is
complete and verified; a ``.part`` file left by an interrupted or network-failed run is picked up
by the next one. Google Drive links go through the ``gdown`` package (which resumes too) and are
verified by the same code afterwards.

Every failure raises `FetchError` whose message names the URL and what went wrong.
"""

import hashlib
import http.client
import os
import posixpath
import re
import shutil
import time
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.parse import unquote, urlparse
from urllib.request import Request, url2pathname, urlopen

from ..infra.errors import FetchError

__all__ = [
    "ChecksumMismatch",
    "download",
    "drive_file_id",
    "is_hex_digest",
    "url_filename",
]

_CHUNK = 1 << 20
_HEX = re.compile(r"^[0-9a-f]+$")
_DIGEST_LENGTHS = {"sha256": 64, "md5": 32}
_USER_AGENT = "i2crc-fetch/1"
_DRIVE_HOSTS = ("drive.google.com", "docs.google.com")

# Indirection so tests can skip the backoff waits.
_sleep = time.sleep


class ChecksumMismatch(FetchError):
    """The downloaded bytes do not have the expected checksum."""


class _Retryable(Exception):
    """An attempt failed in a way another attempt may fix (network, 5xx, truncation)."""


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


def is_hex_digest(text: str, algorithm: str) -> bool:
    """Whether `text` is a lower-case hex digest of `algorithm` ("sha256" or "md5")."""
    return len(text) == _DIGEST_LENGTHS[algorithm] and bool(_HEX.match(text))


def _expected_digests(url: str, **given) -> dict:
    """{algorithm: lower-case hex} of the checksums given; FetchError for a malformed one."""
    expected = {}
    for algorithm, value in given.items():
        if value is None:
            continue
        text = str(value).strip().lower()
        if not is_hex_digest(text, algorithm):
            raise FetchError(
                f"{url}: expected {algorithm} must be "
                f"{_DIGEST_LENGTHS[algorithm]} hex digits, got {value!r}"
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
            id=file_id,
            output=str(part),
            quiet=True,
            resume=True,
            retries=retries,
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
                    f"server answered a resume at byte {offset} with bytes from {start}; restarting"
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
