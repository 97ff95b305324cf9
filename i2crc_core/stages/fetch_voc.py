"""Stage: download VOC 2012 + SBD and build SegmentationClassAug and train_aug (`vocaug`)."""

import logging

from ..data.vocaug import fetch_voc_aug

log = logging.getLogger(__name__)


def run(*, root, voc, sbd, download_dir, train_aug_count):
    ids = fetch_voc_aug(
        root=root, voc=voc, sbd=sbd, download_dir=download_dir, train_aug_count=train_aug_count
    )
    log.info("%s: built, train_aug %d images", root, len(ids))
