"""Stages: external assets — a saliency-map archive and torchvision's ImageNet weights."""

import logging
import os
from pathlib import Path

from ..data.saliency_archive import fetch_saliency
from ..nets.weights import imagenet_weights_file

log = logging.getLogger(__name__)


def saliency_archive(*, url, sha256, archive, member_prefix, out_dir, cache_dir):
    """Download (or reuse from `cache_dir`) and verify the archive, extract its maps."""
    source = {"url": url, "sha256": sha256, "archive": archive, "member_prefix": member_prefix}
    fetch_saliency(source, out_dir, cache_dir)
    log.info("%s: %d maps", out_dir, sum(1 for _ in Path(out_dir).glob("*.png")))


def imagenet_weights(*, backbone, link_path):
    """Link `link_path` to the cached ImageNet weights of `backbone`, downloading them once.

    The pipeline refers to the link, so the cache (TORCH_HOME) is shared by every run and
    the weights file becomes an input of the training rules.
    """
    target = imagenet_weights_file(backbone, progress=True)
    link_path = Path(link_path)
    link_path.parent.mkdir(parents=True, exist_ok=True)
    temporary = link_path.with_name(f".{link_path.name}.tmp")
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(target.resolve())
    os.replace(temporary, link_path)
    log.info("%s -> %s", link_path, target)
