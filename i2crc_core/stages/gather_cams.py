"""Stage: join the CAM shards into one store (virtual datasets or a copy)."""

import logging

from ..infra.camstore import merge_cam_stores

log = logging.getLogger(__name__)


def run(*, shard_paths, out_path, mode):
    merge_cam_stores(shard_paths, out_path, mode=mode)
    log.info("joined %d shards into %s (%s)", len(shard_paths), out_path, mode)
