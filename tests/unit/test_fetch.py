"""Fetching assets: resumable verified downloads (downloads.py), safe archive extraction
(archives.py), and both for a saliency-map archive (saliency_archive.py).

Everything runs against a local HTTP server on 127.0.0.1 (no network) and tmp_path.
"""

import hashlib
import io
import re
import socket
import stat
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from i2crc_core.data import downloads
from i2crc_core.data.archives import extract_archive
from i2crc_core.data.downloads import ChecksumMismatch, download
from i2crc_core.data.saliency_archive import fetch_saliency
from i2crc_core.infra.errors import ConfigError, FetchError

# --------------------------------------------------------------------------------------------
# A local server: serves bytes from a dict, honours Range, and misbehaves on request.
# --------------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    """Modes (per path, consumed one per request from `server.script[path]`, then "ok"):

    "ok", an int status (404, 500, ...), "truncate" (Content-Length larger than the body,
    connection closed half-way), "ignore_range" (answer 200 with the whole file).
    """

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):  # noqa: N802 (http.server API)
        server = self.server
        with server.lock:
            server.log.append((self.path, self.headers.get("Range")))
            script = server.script.get(self.path)
            mode = script.pop(0) if script else server.always.get(self.path, "ok")
        data = server.files.get(self.path)
        if isinstance(mode, int):
            self.send_error(mode)
            return
        if data is None:
            self.send_error(404)
            return
        start, status = 0, 200
        requested = self.headers.get("Range")
        if requested and mode != "ignore_range":
            match = re.match(r"bytes=(\d+)-$", requested)
            start = int(match.group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        body = data[start:]
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        if mode == "truncate":
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


class LocalServer:
    def __init__(self):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.files = {}
        self.httpd.script = {}
        self.httpd.always = {}
        self.httpd.log = []
        self.httpd.lock = threading.Lock()
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def add(self, path, data, script=(), always=None):
        self.httpd.files[path] = data
        self.httpd.script[path] = list(script)
        if always is not None:
            self.httpd.always[path] = always
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def requests(self, path):
        return [rng for logged, rng in self.httpd.log if logged == path]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    local = LocalServer()
    yield local
    local.close()


@pytest.fixture(autouse=True)
def _no_backoff_wait(monkeypatch):
    monkeypatch.setattr(downloads, "_sleep", lambda seconds: None)


def _payload(size=300_000, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()


def _sha(data):
    return hashlib.sha256(data).hexdigest()


def _names(folder):
    return sorted(p.name for p in Path(folder).iterdir())


# --------------------------------------------------------------------------------------------
# download
# --------------------------------------------------------------------------------------------


def test_download_verifies_and_renames(server, tmp_path):
    data = _payload()
    url = server.add("/maps.bin", data)
    dest = tmp_path / "cache" / "maps.bin"
    assert download(url, dest, sha256=_sha(data)) == dest
    assert dest.read_bytes() == data
    assert _names(dest.parent) == ["maps.bin"]
    # A verified dest is reused without asking the server again.
    assert download(url, dest, sha256=_sha(data)) == dest
    assert len(server.requests("/maps.bin")) == 1


def test_wrong_checksum_leaves_nothing(server, tmp_path):
    data = _payload()
    url = server.add("/maps.bin", data)
    dest = tmp_path / "maps.bin"
    wrong = "0" * 64
    with pytest.raises(ChecksumMismatch) as caught:
        download(url, dest, sha256=wrong)
    message = str(caught.value)
    assert url in message and _sha(data) in message and wrong in message
    assert isinstance(caught.value, FetchError)
    assert _names(tmp_path) == []


def test_malformed_checksum_is_rejected(server, tmp_path):
    url = server.add("/maps.bin", b"x")
    with pytest.raises(FetchError, match="64 hex digits"):
        download(url, tmp_path / "maps.bin", sha256="abc")
    assert server.requests("/maps.bin") == []


def test_404_fails_at_once(server, tmp_path):
    url = server.add("/missing.zip", b"", always=404)
    dest = tmp_path / "missing.zip"
    with pytest.raises(FetchError) as caught:
        download(url, dest, retries=3)
    assert "404" in str(caught.value) and url in str(caught.value)
    assert len(server.requests("/missing.zip")) == 1
    assert _names(tmp_path) == []


def test_server_error_is_retried(server, tmp_path):
    data = _payload()
    url = server.add("/maps.bin", data, script=[500, 503])
    dest = tmp_path / "maps.bin"
    download(url, dest, sha256=_sha(data), retries=3)
    assert dest.read_bytes() == data
    assert len(server.requests("/maps.bin")) == 3


def test_server_error_gives_up_after_retries(server, tmp_path):
    url = server.add("/maps.bin", _payload(), always=500)
    dest = tmp_path / "maps.bin"
    with pytest.raises(FetchError, match=r"3 attempt\(s\).*HTTP 500") as caught:
        download(url, dest, retries=2)
    assert url in str(caught.value)
    assert len(server.requests("/maps.bin")) == 3
    assert not dest.exists()


def test_backoff_doubles(server, tmp_path, monkeypatch):
    waits = []
    monkeypatch.setattr(downloads, "_sleep", waits.append)
    url = server.add("/maps.bin", b"data", always=502)
    with pytest.raises(FetchError):
        download(url, tmp_path / "maps.bin", retries=3, backoff=0.5)
    assert waits == [0.5, 1.0, 2.0]


def test_truncated_transfer_is_resumed(server, tmp_path):
    data = _payload()
    url = server.add("/maps.bin", data, script=["truncate"])
    dest = tmp_path / "maps.bin"
    download(url, dest, sha256=_sha(data))
    assert dest.read_bytes() == data
    ranges = server.requests("/maps.bin")
    # First attempt got half the body; the retry asked only for the rest.
    assert ranges == [None, f"bytes={len(data) // 2}-"]
    assert _names(tmp_path) == ["maps.bin"]


def test_always_truncated_fails_clearly(server, tmp_path):
    data = _payload()
    url = server.add("/maps.bin", data, always="truncate")
    dest = tmp_path / "maps.bin"
    with pytest.raises(FetchError, match="truncated") as caught:
        download(url, dest, sha256=_sha(data), retries=2)
    assert url in str(caught.value)
    assert not dest.exists()
    assert len(server.requests("/maps.bin")) == 3


def test_resume_from_existing_part(server, tmp_path):
    data = _payload()
    url = server.add("/maps.bin", data)
    dest = tmp_path / "maps.bin"
    half = len(data) // 2
    dest.with_name("maps.bin.part").write_bytes(data[:half])
    download(url, dest, sha256=_sha(data))
    assert server.requests("/maps.bin") == [f"bytes={half}-"]
    assert dest.read_bytes() == data
    assert _names(tmp_path) == ["maps.bin"]


def test_resume_when_server_ignores_range(server, tmp_path):
    data = _payload()
    url = server.add("/maps.bin", data, always="ignore_range")
    dest = tmp_path / "maps.bin"
    dest.with_name("maps.bin.part").write_bytes(data[:1000])
    download(url, dest, sha256=_sha(data))
    assert dest.read_bytes() == data  # restarted from byte 0, not appended
    assert server.requests("/maps.bin") == ["bytes=1000-"]


def test_complete_part_is_accepted_after_416(server, tmp_path):
    data = _payload(1000)
    url = server.add("/maps.bin", data)
    dest = tmp_path / "maps.bin"
    dest.with_name("maps.bin.part").write_bytes(data)
    download(url, dest, sha256=_sha(data))
    assert dest.read_bytes() == data


def test_stale_part_with_wrong_bytes_is_deleted(server, tmp_path):
    data = _payload()
    url = server.add("/maps.bin", data)
    dest = tmp_path / "maps.bin"
    dest.with_name("maps.bin.part").write_bytes(b"\0" * 100)
    with pytest.raises(ChecksumMismatch):
        download(url, dest, sha256=_sha(data))
    assert _names(tmp_path) == []
    download(url, dest, sha256=_sha(data))  # the rerun starts clean
    assert dest.read_bytes() == data


def test_connection_refused_is_a_clear_error(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/maps.zip"
    with pytest.raises(FetchError, match="cannot connect") as caught:
        download(url, tmp_path / "maps.zip", retries=1)
    assert url in str(caught.value)
    assert _names(tmp_path) == []


def test_existing_dest_with_wrong_checksum_is_replaced(server, tmp_path):
    data = _payload()
    url = server.add("/maps.bin", data)
    dest = tmp_path / "maps.bin"
    dest.write_bytes(b"old")
    download(url, dest, sha256=_sha(data))
    assert dest.read_bytes() == data


def test_local_path_and_file_url(tmp_path):
    data = _payload(5000)
    source = tmp_path / "src" / "maps.bin"
    source.parent.mkdir()
    source.write_bytes(data)
    first = download(str(source), tmp_path / "a" / "maps.bin", sha256=_sha(data))
    second = download(source.as_uri(), tmp_path / "b" / "maps.bin", sha256=_sha(data))
    assert first.read_bytes() == data and second.read_bytes() == data
    with pytest.raises(FetchError, match="not found"):
        download(str(tmp_path / "nope.zip"), tmp_path / "c" / "nope.zip")
    assert not (tmp_path / "c" / "nope.zip").exists()


def test_md5_and_sha256_pins(server, tmp_path):
    data = _payload()
    url = server.add("/VOCtrainval.tar", data)
    md5 = hashlib.md5(data).hexdigest()
    dest = download(url, tmp_path / "ok.tar", md5=md5, sha256=_sha(data))
    assert dest.read_bytes() == data
    with pytest.raises(ChecksumMismatch, match=f"md5 is {md5}, expected {'0' * 32}") as caught:
        download(url, tmp_path / "bad.tar", md5="0" * 32)
    assert url in str(caught.value)
    assert not (tmp_path / "bad.tar").exists()
    assert not (tmp_path / "bad.tar.part").exists()
    with pytest.raises(FetchError, match="md5 must be 32 hex digits"):
        download(url, tmp_path / "x.tar", md5=_sha(data))


# --------------------------------------------------------------------------------------------
# extract_archive
# --------------------------------------------------------------------------------------------


def _png_bytes(value):
    buffer = io.BytesIO()
    Image.fromarray(np.full((4, 5), value % 256, dtype=np.uint8), mode="L").save(buffer, "PNG")
    return buffer.getvalue()


def _maps(prefix="", count=3):
    return {f"{prefix}{i:04d}.png": _png_bytes(i * 40) for i in range(count)}


def _zip(path, members):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _tar(path, members, links=()):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target, kind in links:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = target
            tar.addfile(info)
    return path


def test_zip_with_nested_top_folder_is_flattened(tmp_path):
    archive = _zip(tmp_path / "saliency.zip", _maps("VOC/saliency_aug/"))
    out = tmp_path / "out"
    pngs = extract_archive(archive, out)
    assert [p.name for p in pngs] == ["0000.png", "0001.png", "0002.png"]
    assert all(p.parent == out for p in pngs)
    assert np.asarray(Image.open(out / "0002.png")).max() == 80
    assert _names(tmp_path) == ["out", "saliency.zip"]  # no temp folder left


def test_tar_gz_flat_and_member_prefix(tmp_path):
    members = {**_maps("saliency_aug/"), "README.txt": b"maps"}
    archive = _tar(tmp_path / "saliency_aug.tar.gz", members)
    # Two top-level entries: no automatic flattening.
    pngs = extract_archive(archive, tmp_path / "all")
    assert sorted(p.relative_to(tmp_path / "all").as_posix() for p in pngs) == [
        f"saliency_aug/{i:04d}.png" for i in range(3)
    ]
    pngs = extract_archive(archive, tmp_path / "maps", member_prefix="saliency_aug/")
    assert [p.name for p in pngs] == ["0000.png", "0001.png", "0002.png"]
    assert _names(tmp_path / "maps") == ["0000.png", "0001.png", "0002.png"]


def test_tgz_and_plain_tar(tmp_path):
    tgz = _tar(tmp_path / "m.tgz", _maps())
    assert len(extract_archive(tgz, tmp_path / "a")) == 3
    with tarfile.open(tmp_path / "m.tar", "w") as tar:
        tar.add(tmp_path / "a", arcname="a")
    assert len(extract_archive(tmp_path / "m.tar", tmp_path / "b")) == 3


def test_reextract_replaces_previous_output(tmp_path):
    out = tmp_path / "out"
    extract_archive(_zip(tmp_path / "one.zip", _maps(count=3)), out)
    extract_archive(_zip(tmp_path / "two.zip", {"x.png": _png_bytes(1)}), out)
    assert _names(out) == ["x.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.zip", "out", "two.zip"]


@pytest.mark.parametrize("name", ["../evil.png", "maps/../../evil.png"])
def test_path_traversal_is_refused(tmp_path, name):
    members = {**_maps("maps/"), name: b"evil"}
    for archive in (_zip(tmp_path / "bad.zip", members), _tar(tmp_path / "bad.tar.gz", members)):
        out = tmp_path / "out"
        with pytest.raises(FetchError, match="unsafe member") as caught:
            extract_archive(archive, out)
        assert str(archive) in str(caught.value)
        assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.tar.gz", "bad.zip"]
    assert not (tmp_path.parent / "evil.png").exists()


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_absolute_and_backslash_names_stay_inside(tmp_path, kind):
    write = _zip if kind == "zip" else _tar
    out = tmp_path / "out"
    # Both libraries drop the leading '/' of an absolute name.
    extract_archive(write(tmp_path / f"abs.{kind}", {**_maps("maps/"), "/abs/e.png": b"e"}), out)
    assert (out / "abs" / "e.png").read_bytes() == b"e"
    backslashes = write(tmp_path / f"bs.{kind}", {**_maps("maps/"), "maps\\..\\..\\e.png": b"e"})
    if kind == "zip":  # refused, as a Windows unzip would climb out
        with pytest.raises(FetchError, match="unsafe member"):
            extract_archive(backslashes, out)
    else:  # a plain character of a file name inside the output on POSIX
        extract_archive(backslashes, out)
        assert (out / "maps\\..\\..\\e.png").read_bytes() == b"e"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"abs.{kind}", f"bs.{kind}", "out"]
    )
    assert not list(tmp_path.parent.glob("*.png"))


@pytest.mark.parametrize(
    "link",
    [
        ("m/x.png", "../../etc/passwd", tarfile.SYMTYPE),
        ("m/x.png", "/etc/passwd", tarfile.SYMTYPE),
        ("m/x.png", "../../etc/passwd", tarfile.LNKTYPE),
        ("m/dev", "", tarfile.CHRTYPE),
    ],
)
def test_links_outside_and_devices_are_refused(tmp_path, link):
    archive = _tar(tmp_path / "bad.tar.gz", _maps("m/"), links=[link])
    with pytest.raises(FetchError, match="unsafe member") as caught:
        extract_archive(archive, tmp_path / "out")
    assert str(archive) in str(caught.value) and "\n" not in str(caught.value)
    assert not (tmp_path / "out").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.tar.gz"]


def test_link_inside_is_kept(tmp_path):
    maps = _maps("m/")
    archive = _tar(
        tmp_path / "ok.tar.gz", maps, links=[("m/copy.png", "0001.png", tarfile.SYMTYPE)]
    )
    out = tmp_path / "out"
    extract_archive(archive, out)
    assert (out / "copy.png").resolve() == (out / "0001.png").resolve()
    assert (out / "copy.png").read_bytes() == maps["m/0001.png"]


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE, "zip"])
def test_a_saliency_archive_refuses_every_link_even_one_the_data_filter_passes(tmp_path, kind):
    """A link that stays inside the extraction folder but leaves the output once the single top
    folders are stripped: out/x.png -> ../../outside.png (a zip keeps it as a file)."""
    (tmp_path / "outside.png").write_bytes(_png_bytes(7))
    target, name = "../../outside.png", "m/n/x.png"
    if kind == "zip":
        archive = tmp_path / "maps.zip"
        with zipfile.ZipFile(archive, "w") as zf:
            for member, data in _maps("m/n/").items():
                zf.writestr(member, data)
            link = zipfile.ZipInfo(name)
            link.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(link, target)
        what = "symbolic link"
    else:
        archive = _tar(tmp_path / "maps.tar.gz", _maps("m/n/"), links=[(name, target, kind)])
        what = "symbolic link" if kind == tarfile.SYMTYPE else "hard link"
    with pytest.raises(FetchError) as caught:
        fetch_saliency({"url": str(archive)}, tmp_path / "out", tmp_path / "cache")
    assert str(caught.value).startswith(
        f"{tmp_path / 'cache' / archive.name}: member '{name}' is a {what} (to '{target}'); "
        "this archive may hold regular files only"
    )
    assert not (tmp_path / "out").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", archive.name, "outside.png"]


def test_corrupt_archives_fail_cleanly(tmp_path):
    good_zip = _zip(tmp_path / "good.zip", _maps(count=20)).read_bytes()
    good_tgz = _tar(tmp_path / "good.tar.gz", _maps(count=20)).read_bytes()
    cases = {
        "garbage.zip": b"this is not an archive",
        "cut.zip": good_zip[: len(good_zip) // 2],
        "cut.tar.gz": good_tgz[: len(good_tgz) // 2],
        "garbage.tar.gz": b"\x1f\x8b\x08" + b"\0" * 50,
        "noidea.bin": b"neither zip nor tar",
    }
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.png").write_bytes(b"previous")
    for name, data in cases.items():
        archive = tmp_path / name
        archive.write_bytes(data)
        with pytest.raises(FetchError) as caught:
            extract_archive(archive, out)
        assert str(archive) in str(caught.value), name
        assert _names(out) == ["keep.png"], name  # previous output untouched
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_zip_with_bad_crc_fails(tmp_path):
    data = _png_bytes(7) * 50
    raw = bytearray(_zip(tmp_path / "crc.zip", {"a.png": data}).read_bytes())
    offset = raw.index(data[:40])  # stored uncompressed by default: flip a byte of the data
    raw[offset + 100] ^= 0xFF
    (tmp_path / "crc.zip").write_bytes(bytes(raw))
    with pytest.raises(FetchError, match="corrupt"):
        extract_archive(tmp_path / "crc.zip", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_missing_member_prefix_and_empty_archive(tmp_path):
    archive = _zip(tmp_path / "m.zip", _maps("maps/"))
    with pytest.raises(FetchError, match="member prefix"):
        extract_archive(archive, tmp_path / "out", member_prefix="saliency_aug")
    with pytest.raises(FetchError, match="no files"):
        extract_archive(_zip(tmp_path / "empty.zip", {}), tmp_path / "out")
    with pytest.raises(FetchError, match="no PNG"):
        extract_archive(
            _zip(tmp_path / "txt.zip", {"a.txt": b"x"}), tmp_path / "out", require_png=True
        )
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------------------------
# fetch_saliency
# --------------------------------------------------------------------------------------------


def test_fetch_saliency_from_url(server, tmp_path):
    archive = _zip(tmp_path / "src.zip", _maps("saliency_aug/", count=4)).read_bytes()
    url = server.add("/files/saliency_aug.zip", archive)
    source = {"url": url, "sha256": _sha(archive), "archive": None}
    out = fetch_saliency(source, tmp_path / "saliency", tmp_path / "cache")
    assert out == tmp_path / "saliency"
    assert _names(out) == [f"{i:04d}.png" for i in range(4)]
    assert _names(tmp_path / "cache") == ["saliency_aug.zip"]
    # A rerun reuses the cached, verified archive.
    fetch_saliency(source, tmp_path / "saliency", tmp_path / "cache")
    assert len(server.requests("/files/saliency_aug.zip")) == 1


def test_fetch_saliency_archive_flag_and_local_path(server, tmp_path):
    data = _tar(tmp_path / "src.tar.gz", _maps("a/b/")).read_bytes()
    url = server.add("/download", data)  # no suffix: the flag says it is an archive
    out = fetch_saliency({"url": url, "archive": True}, tmp_path / "s1", tmp_path / "cache")
    assert len(_names(out)) == 3
    out = fetch_saliency({"url": str(tmp_path / "src.tar.gz")}, tmp_path / "s2", tmp_path / "c2")
    assert len(_names(out)) == 3


def test_fetch_saliency_errors(server, tmp_path):
    url = server.add("/map.png", _png_bytes(3))
    with pytest.raises(ConfigError, match="single file"):
        fetch_saliency({"url": url}, tmp_path / "out", tmp_path / "cache")
    with pytest.raises(ConfigError, match="single file"):
        fetch_saliency({"url": url + ".zip", "archive": False}, tmp_path / "out", tmp_path / "c")
    with pytest.raises(ConfigError, match="saliency.url"):
        fetch_saliency({"url": None}, tmp_path / "out", tmp_path / "cache")
    with pytest.raises(ConfigError, match="saliency.sha256"):
        fetch_saliency({"url": url + ".zip", "sha256": "xyz"}, tmp_path / "out", tmp_path / "c")
    assert server.requests("/map.png") == []
    # An archive whose checksum does not match: nothing in the cache, no output.
    data = _zip(tmp_path / "src.zip", _maps()).read_bytes()
    zip_url = server.add("/m.zip", data)
    with pytest.raises(FetchError, match="sha256 is"):
        fetch_saliency({"url": zip_url, "sha256": "1" * 64}, tmp_path / "out", tmp_path / "cache")
    assert not (tmp_path / "out").exists()
    assert list((tmp_path / "cache").iterdir()) == []
    # A corrupt archive served with the right checksum: FetchError, no output.
    bad = b"PK\x03\x04 not really a zip"
    bad_url = server.add("/bad.zip", bad)
    with pytest.raises(FetchError, match="bad.zip"):
        fetch_saliency({"url": bad_url, "sha256": _sha(bad)}, tmp_path / "out", tmp_path / "cache")
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------------------------
# Google Drive links (gdown). drive.google.com is unreachable here: the `drive` fixture makes
# gdown's real download code fetch each file id from the local server instead, so everything
# after the Drive-specific URL handling (resume, verification, caching, extraction) is tested.
# --------------------------------------------------------------------------------------------

FILE_ID = "1aBc-D_e2FgHiJkLmNoPqRsTuVwXyZ012"


@pytest.mark.parametrize(
    "url, expected",
    [
        (f"https://drive.google.com/file/d/{FILE_ID}/view?usp=sharing", FILE_ID),
        (f"https://drive.google.com/file/d/{FILE_ID}/view", FILE_ID),
        (f"https://drive.google.com/open?id={FILE_ID}", FILE_ID),
        (f"https://drive.google.com/uc?id={FILE_ID}", FILE_ID),
        (f"https://drive.google.com/uc?export=download&id={FILE_ID}", FILE_ID),
        (f"https://example.org/file/d/{FILE_ID}/view", None),
        (f"http://127.0.0.1:8000/uc?id={FILE_ID}", None),
        ("data/saliency_aug.zip", None),
    ],
)
def test_drive_file_id(url, expected):
    assert downloads.drive_file_id(url) == expected


def test_drive_folder_link_is_refused():
    url = f"https://drive.google.com/drive/folders/{FILE_ID}"
    with pytest.raises(FetchError, match="not to a single file") as caught:
        downloads.drive_file_id(url)
    assert url in str(caught.value)


@pytest.fixture
def drive(server, monkeypatch):
    """Serve Drive file ids from the local server; yields a function adding a file."""
    import gdown

    real = gdown.download
    base = f"http://127.0.0.1:{server.httpd.server_address[1]}"

    def local_drive(*, id, output, **options):  # noqa: A002 (gdown's keyword)
        return real(url=f"{base}/drive/{id}", output=output, use_cookies=False, **options)

    monkeypatch.setattr(gdown, "download", local_drive)
    return lambda data, **modes: server.add(f"/drive/{FILE_ID}", data, **modes)


def test_drive_archive_is_verified_cached_and_extracted(server, drive, tmp_path):
    data = _zip(tmp_path / "src.zip", _maps("saliency_aug/", count=4)).read_bytes()
    drive(data)
    url = f"https://drive.google.com/file/d/{FILE_ID}/view?usp=sharing"
    # No archive suffix in a Drive link: the content says it is a zip.
    out = fetch_saliency({"url": url, "sha256": _sha(data)}, tmp_path / "maps", tmp_path / "cache")
    assert _names(out) == [f"{i:04d}.png" for i in range(4)]
    assert _names(tmp_path / "cache") == [f"drive-{FILE_ID}"]
    fetch_saliency({"url": url, "sha256": _sha(data)}, tmp_path / "maps", tmp_path / "cache")
    assert len(server.requests(f"/drive/{FILE_ID}")) == 1  # the cached archive is reused
    with pytest.raises(ChecksumMismatch, match=f"{re.escape(url)}: sha256 is {_sha(data)}"):
        fetch_saliency({"url": url, "sha256": "1" * 64}, tmp_path / "m2", tmp_path / "c2")
    assert list((tmp_path / "c2").iterdir()) == [] and not (tmp_path / "m2").exists()


def test_drive_download_resumes_after_a_cut(server, drive, tmp_path):
    data = _payload(2_000_000)  # gdown writes 512 KiB blocks: the cut leaves one or more
    drive(data, script=["truncate"])
    url = f"https://drive.google.com/uc?id={FILE_ID}"
    dest = download(url, tmp_path / "maps.bin", sha256=_sha(data), retries=2)
    assert dest.read_bytes() == data
    first, resumed = server.requests(f"/drive/{FILE_ID}")
    assert first is None and int(resumed.removeprefix("bytes=").rstrip("-")) >= 512 * 1024
    assert _names(tmp_path) == ["maps.bin"]


def test_drive_failure_is_one_line(server, drive, tmp_path):
    drive(b"", always=404)
    url = f"https://drive.google.com/open?id={FILE_ID}"
    with pytest.raises(FetchError) as caught:
        download(url, tmp_path / "maps.zip", retries=0)
    message = str(caught.value)
    assert message.startswith(f"{url}: Google Drive download failed") and "404" in message
    assert "\n" not in message
    assert not (tmp_path / "maps.zip").exists()
