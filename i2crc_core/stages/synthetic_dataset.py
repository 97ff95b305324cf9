"""Stage: generate the built-in synthetic benchmark in VOC layout."""

import json
import logging

from ..data import synthetic

log = logging.getLogger(__name__)


def run(*, root, seed, num_classes, **parameters):
    stats = synthetic.generate(root, seed=seed, num_classes=num_classes, **parameters)
    log.info("generated synthetic dataset: %s", json.dumps(stats))
