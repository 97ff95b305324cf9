"""Saliency maps from an archive: downloaded (`downloads.download`, cached and verified) and
extracted (`archives.extract_archive`), e.g. the OAA ``saliency_aug`` archive.

A bad source description is a `ConfigError` naming the config key; a failed download or
extraction a `FetchError` naming the URL or file.
"""

from collections.abc import Mapping
from pathlib import Path

from ..infra.errors import ConfigError
from .archives import extract_archive, is_archive_name
from .downloads import download, drive_file_id, is_hex_digest, url_filename

__all__ = ["fetch_saliency"]


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
        if not is_hex_digest(text, "sha256"):
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
    # Maps are regular files: a link member could stand for a file outside the run's folders.
    extract_archive(
        cached, out_dir, member_prefix=source.get("member_prefix"), require_png=True, links=False
    )
    return Path(out_dir)
