"""ImageNet weights: torchvision cache (TORCH_HOME), download through torchvision, offline
guidance; local weight paths.

The "published" file is a small state dict saved here and served by a local HTTP server; the
test points torchvision's weights enum at it.
"""

import hashlib
from pathlib import Path

import pytest
import torch
from torchvision.models import VGG16_Weights

from i2crc_core.infra.errors import ConfigError, FetchError
from i2crc_core.nets.models import local_weights_file
from i2crc_core.nets.weights import imagenet_weights_file, imagenet_weights_url, torch_cache_dir


@pytest.fixture(autouse=True)
def _torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))


@pytest.fixture
def publish(monkeypatch):
    """Point VGG16_Weights.IMAGENET1K_V1 at a URL for the test's duration."""
    return lambda url: monkeypatch.setattr(VGG16_Weights.IMAGENET1K_V1.value, "url", url)


def _state_dict_file(folder: Path, prefix_override=None) -> Path:
    scratch = folder / "scratch.pth"
    torch.save({"features.0.weight": torch.arange(12.0).reshape(3, 4)}, scratch)
    digest = hashlib.sha256(scratch.read_bytes()).hexdigest()
    path = folder / f"vgg16-{prefix_override or digest[:8]}.pth"
    scratch.rename(path)
    return path


def test_cache_dir_follows_torch_home(tmp_path):
    assert torch_cache_dir() == tmp_path / "torch_home" / "hub" / "checkpoints"


def test_download_caches_and_reuses(served, publish):
    root, base, hits = served
    published = _state_dict_file(root)
    publish(f"{base}/{published.name}")
    path = imagenet_weights_file("vgg16")
    assert path == torch_cache_dir() / published.name
    assert path.read_bytes() == published.read_bytes()
    assert torch.load(path, weights_only=True)["features.0.weight"].shape == (3, 4)
    assert hits == [f"/{published.name}"]
    assert imagenet_weights_file("vgg16") == path
    assert hits == [f"/{published.name}"]  # second call: served from the cache
    assert [p.name for p in path.parent.iterdir()] == [published.name]


def test_wrong_sha_prefix_is_rejected(served, publish):
    root, base, _ = served
    published = _state_dict_file(root, prefix_override="deadbeef")
    publish(f"{base}/{published.name}")
    with pytest.raises(FetchError, match="deadbeef") as caught:
        imagenet_weights_file("vgg16")
    assert not isinstance(caught.value, ConfigError)
    assert "not the published one" in str(caught.value)
    cache = torch_cache_dir()
    assert not cache.exists() or list(cache.iterdir()) == []


def test_offline_without_cache_explains_what_to_do(closed_port, publish):
    url = f"http://127.0.0.1:{closed_port}/vgg16-397923af.pth"
    publish(url)
    with pytest.raises(ConfigError) as caught:
        imagenet_weights_file("vgg16")
    message = str(caught.value)
    cache = torch_cache_dir() / "vgg16-397923af.pth"
    assert "no network" in message and "\n" not in message
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
    assert imagenet_weights_file(backbone) == cached


def test_small_and_unknown_backbones():
    with pytest.raises(ConfigError, match="'small' has no ImageNet weights"):
        imagenet_weights_file("small")
    with pytest.raises(ConfigError, match="resnet50"):
        imagenet_weights_file("resnet50")


def test_local_weight_paths(tmp_path):
    local = _state_dict_file(tmp_path)
    assert local_weights_file(str(local), "vgg16") == local
    assert local_weights_file(local, "resnet101") == local
    missing = tmp_path / "nope.pth"
    with pytest.raises(ConfigError, match="does not exist") as caught:
        local_weights_file(str(missing), "vgg16")
    assert str(missing) in str(caught.value)
    with pytest.raises(ConfigError, match="folder"):
        local_weights_file(str(tmp_path), "vgg16")
