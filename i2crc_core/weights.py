"""Locating ImageNet backbone weights: torchvision's published files or a local .pth.

``classifier.weights`` / ``segmentation.weights`` is one of

* ``null`` — no pretrained weights;
* ``"imagenet"`` — torchvision's ImageNet weights for the backbone (VGG16_Weights.IMAGENET1K_V1,
  ResNet101_Weights.IMAGENET1K_V1), taken from torchvision's cache
  ``$TORCH_HOME/hub/checkpoints/<file>`` (``torch.hub.get_dir()``) or downloaded there,
  resumably and checked against the sha256 prefix torchvision embeds in the file name;
* any other string — the path of a local torchvision state-dict file.

`resolve_weights` returns the path of the file to load (models take a local path or None), so
nothing touches the network when the file is already cached or given locally.
"""

import re
from pathlib import Path

from .errors import ConfigError, FetchError
from .fetch import ChecksumMismatch, download, url_filename
from .models import local_weights_file

__all__ = ["IMAGENET", "imagenet_weights_url", "resolve_weights", "torch_cache_dir"]

IMAGENET = "imagenet"
# The enum member of torchvision's weights API for each backbone (looked up lazily).
_WEIGHTS_ENUMS = {
    "vgg16": ("VGG16_Weights", "IMAGENET1K_V1"),
    "resnet101": ("ResNet101_Weights", "IMAGENET1K_V1"),
}
# torchvision file names end in '-<leading sha256 hex digits>.<ext>'.
_HASH_IN_NAME = re.compile(r"-([0-9a-f]+)\.[^.-]+$")


def torch_cache_dir() -> Path:
    """Where torchvision caches downloaded weights (honours TORCH_HOME)."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def imagenet_weights_url(backbone: str) -> str:
    """The URL of torchvision's ImageNet weights for `backbone` (vgg16, resnet101)."""
    if backbone == "small":
        raise ConfigError(
            "backbone 'small' has no ImageNet weights: set the weights key to null "
            "(or use backbone vgg16 / resnet101)"
        )
    if backbone not in _WEIGHTS_ENUMS:
        raise ConfigError(
            f"no ImageNet weights known for backbone '{backbone}' "
            f"(known: {', '.join(sorted(_WEIGHTS_ENUMS))})"
        )
    import torchvision.models

    enum_name, member = _WEIGHTS_ENUMS[backbone]
    return getattr(getattr(torchvision.models, enum_name), member).url


def resolve_weights(spec, backbone: str, url: str | None = None) -> Path | None:
    """The local file holding the backbone weights that `spec` asks for, or None.

    `spec` None -> None. ``"imagenet"`` -> the cached torchvision file for `backbone`, downloaded
    into ``torch.hub.get_dir()/checkpoints/`` first if absent (`url` overrides torchvision's URL,
    for mirrors and tests); the download is checked against the sha256 prefix in the file name.
    Without network and without a cached file this raises ConfigError telling where to put a
    copy of the file or how to point the config at a local .pth. Any other value is the path of
    a local .pth file, which must exist.
    """
    if spec is None:
        return None
    if isinstance(spec, str) and spec.strip().lower() == IMAGENET:
        return _imagenet(backbone, url)
    if not isinstance(spec, (str, Path)) or not str(spec).strip():
        raise ConfigError(
            f"weights must be null, 'imagenet' or the path of a .pth file, got {spec!r}"
        )
    return local_weights_file(spec, backbone)


def _imagenet(backbone: str, url: str | None) -> Path:
    default_url = imagenet_weights_url(backbone)
    url = str(url) if url else default_url
    filename = url_filename(url)
    if not filename:
        raise ConfigError(f"weights URL {url} does not end in a file name")
    cache = torch_cache_dir() / filename
    if cache.is_file():
        return cache
    match = _HASH_IN_NAME.search(filename)
    prefix = match.group(1) if match else None
    try:
        return download(url, cache, sha256_prefix=prefix)
    except ChecksumMismatch as error:
        raise FetchError(
            f"ImageNet weights for {backbone}: the downloaded file is not the published one "
            f"({error}); it was deleted — retry, or download {url} elsewhere and put it at "
            f"{cache}"
        ) from None
    except FetchError as error:
        raise ConfigError(
            f"cannot get ImageNet weights for backbone '{backbone}': {error}. "
            f"If this machine has no network: download {url} elsewhere and put it at {cache} "
            "(torchvision's cache; set TORCH_HOME to move it), or set classifier.weights / "
            "segmentation.weights to the path of a local .pth file."
        ) from None
