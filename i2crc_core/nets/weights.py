"""torchvision's ImageNet backbone weights, fetched once into torchvision's own cache.

``classifier.weights`` / ``segmentation.weights: imagenet`` means torchvision's ImageNet
weights for the backbone (VGG16_Weights.IMAGENET1K_V1, ResNet101_Weights.IMAGENET1K_V1). The
`imagenet_weights` rule calls `imagenet_weights_file`, which returns the cached file
``$TORCH_HOME/hub/checkpoints/<file>`` (``torch.hub.get_dir()``) and, when it is absent, has
torchvision download it there (``Weights.get_state_dict(check_hash=True)``: checked against the
sha256 prefix in the file name). Local ``.pth`` paths never come here (`models` reads them).
"""

from pathlib import Path

from ..infra.errors import ConfigError, FetchError

__all__ = ["imagenet_weights_file", "imagenet_weights_url", "torch_cache_dir"]

# The enum member of torchvision's weights API for each backbone (looked up lazily).
_WEIGHTS_ENUMS = {
    "vgg16": ("VGG16_Weights", "IMAGENET1K_V1"),
    "resnet101": ("ResNet101_Weights", "IMAGENET1K_V1"),
}


def torch_cache_dir() -> Path:
    """Where torchvision caches downloaded weights (honours TORCH_HOME)."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def _weights_enum(backbone: str):
    if backbone == "small":
        raise ConfigError(
            "backbone 'small' has no ImageNet weights: set the weights key to 'pretrained' (the "
            "benchmark's pretraining stage) or null (or use backbone vgg16 / resnet101)"
        )
    if backbone not in _WEIGHTS_ENUMS:
        raise ConfigError(
            f"no ImageNet weights known for backbone '{backbone}' "
            f"(known: {', '.join(sorted(_WEIGHTS_ENUMS))})"
        )
    import torchvision.models

    enum_name, member = _WEIGHTS_ENUMS[backbone]
    return getattr(getattr(torchvision.models, enum_name), member)


def imagenet_weights_url(backbone: str) -> str:
    """The URL of torchvision's ImageNet weights for `backbone` (vgg16, resnet101)."""
    return _weights_enum(backbone).url


def imagenet_weights_file(backbone: str, *, progress: bool = False) -> Path:
    """The cached torchvision ImageNet weights file of `backbone`, downloaded first if absent.

    A download whose bytes do not match the hash in the file name raises FetchError (torch
    deletes it). Without network this raises ConfigError telling where to put a copy of the
    file or how to point the config at a local .pth.
    """
    weights = _weights_enum(backbone)
    cache = torch_cache_dir() / weights.url.rsplit("/", 1)[-1]
    if cache.is_file():
        return cache
    try:
        weights.get_state_dict(progress=progress, check_hash=True, weights_only=True)
    except RuntimeError as error:  # torch.hub: "invalid hash value (expected ..., got ...)"
        raise FetchError(
            f"ImageNet weights for {backbone}: the downloaded file is not the published one "
            f"({error}); it was deleted — retry, or download {weights.url} elsewhere and put it "
            f"at {cache}"
        ) from None
    except OSError as error:  # URLError, HTTPError, connection refused, disk full
        raise ConfigError(
            f"cannot get ImageNet weights for backbone '{backbone}': {weights.url}: {error}. "
            f"If this machine has no network: download {weights.url} elsewhere and put it at "
            f"{cache} (torchvision's cache; set TORCH_HOME to move it), or set "
            "classifier.weights / segmentation.weights to the path of a local .pth file."
        ) from None
    return cache
