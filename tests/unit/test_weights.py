"""ImageNet weights: torchvision cache (TORCH_HOME), download, offline guidance, local paths.

The "published" file is a small state dict saved here and served by a local HTTP server.
"""

import hashlib
from pathlib import Path

import pytest
import torch

from i2crc_core import fetch
from i2crc_core.errors import ConfigError, FetchError
from i2crc_core.weights import imagenet_weights_url, resolve_weights, torch_cache_dir


@pytest.fixture(autouse=True)
def _torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setattr(fetch, "_sleep", lambda seconds: None)


def _state_dict_file(folder: Path, prefix_override=None) -> Path:
    scratch = folder / "scratch.pth"
    torch.save({"features.0.weight": torch.arange(12.0).reshape(3, 4)}, scratch)
    digest = hashlib.sha256(scratch.read_bytes()).hexdigest()
    path = folder / f"vgg16-{prefix_override or digest[:8]}.pth"
    scratch.rename(path)
    return path


def test_cache_dir_follows_torch_home(tmp_path):
    assert torch_cache_dir() == tmp_path / "torch_home" / "hub" / "checkpoints"


def test_download_caches_and_reuses(served):
    root, base, hits = served
    published = _state_dict_file(root)
    url = f"{base}/{published.name}"
    path = resolve_weights("imagenet", "vgg16", url=url)
    assert path == torch_cache_dir() / published.name
    assert path.read_bytes() == published.read_bytes()
    assert torch.load(path, weights_only=True)["features.0.weight"].shape == (3, 4)
    assert hits == [f"/{published.name}"]
    assert resolve_weights("imagenet", "vgg16", url=url) == path
    assert hits == [f"/{published.name}"]  # second call: served from the cache
    assert [p.name for p in path.parent.iterdir()] == [published.name]


def test_wrong_sha_prefix_is_rejected(served):
    root, base, _ = served
    published = _state_dict_file(root, prefix_override="deadbeef")
    with pytest.raises(FetchError, match="deadbeef") as caught:
        resolve_weights("imagenet", "vgg16", url=f"{base}/{published.name}")
    assert not isinstance(caught.value, ConfigError)
    cache = torch_cache_dir()
    assert not cache.exists() or list(cache.iterdir()) == []


def test_offline_without_cache_explains_what_to_do(closed_port):
    url = f"http://127.0.0.1:{closed_port}/vgg16-397923af.pth"
    with pytest.raises(ConfigError) as caught:
        resolve_weights("imagenet", "vgg16", url=url)
    message = str(caught.value)
    cache = torch_cache_dir() / "vgg16-397923af.pth"
    assert "no network" in message
    assert url in message and str(cache) in message
    assert "classifier.weights" in message and "segmentation.weights" in message
    assert not cache.exists()


@pytest.mark.parametrize("backbone", ["vgg16", "resnet101"])
def test_torchvision_file_in_cache_is_used_offline(backbone):
    url = imagenet_weights_url(backbone)
    assert url.startswith("https://download.pytorch.org/models/")
    cached = torch_cache_dir() / url.rsplit("/", 1)[1]
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"stand-in")  # no download is attempted when the file is cached
    assert resolve_weights("imagenet", backbone) == cached


def test_small_and_unknown_backbones():
    with pytest.raises(ConfigError, match="'small' has no ImageNet weights"):
        resolve_weights("imagenet", "small")
    with pytest.raises(ConfigError, match="resnet50"):
        resolve_weights("imagenet", "resnet50")


def test_none_and_local_paths(tmp_path):
    assert resolve_weights(None, "vgg16") is None
    local = _state_dict_file(tmp_path)
    assert resolve_weights(str(local), "vgg16") == local
    assert resolve_weights(local, "resnet101") == local
    missing = tmp_path / "nope.pth"
    with pytest.raises(ConfigError, match="does not exist") as caught:
        resolve_weights(str(missing), "vgg16")
    assert str(missing) in str(caught.value)
    with pytest.raises(ConfigError, match="folder"):
        resolve_weights(str(tmp_path), "vgg16")
    with pytest.raises(ConfigError):
        resolve_weights(3, "vgg16")
