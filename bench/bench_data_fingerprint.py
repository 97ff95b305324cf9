"""Cost of the data fingerprint that Snakemake computes at every start for a user's dataset
root (i2crc_core/data/data_fingerprint.py): a VOC-sized tree of empty files (10,582 training and
1,449 validation ids, an image and a mask each), fingerprinted cold (first pass after writing)
and warm (median of REPEATS).

Prints one JSON object. An optional argument names the folder to build the tree in (a cluster
file system, say); the default is a temporary folder on the local disk.

    python bench/bench_data_fingerprint.py [folder]
"""

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from i2crc_core.data.data_fingerprint import dataset_fingerprint
from i2crc_core.data.layout import VOC_DIRS

REPEATS = 5
SPLITS = {"train": 10582, "val": 1449}


def build(root: Path) -> None:
    for name, count in SPLITS.items():
        ids = [f"{name}_{index:06d}" for index in range(count)]
        split = root / VOC_DIRS["split_dir"] / f"{name}.txt"
        split.parent.mkdir(parents=True, exist_ok=True)
        split.write_text("\n".join(ids) + "\n")
        for folder, suffix in ((VOC_DIRS["image_dir"], "jpg"), (VOC_DIRS["mask_dir"], "png")):
            (root / folder).mkdir(exist_ok=True)
            for image_id in ids:
                (root / folder / f"{image_id}.{suffix}").touch()


def timed(root: Path) -> float:
    start = time.perf_counter()
    dataset_fingerprint(root, splits={name: name for name in SPLITS}, image_labels="masks")
    return time.perf_counter() - start


def main(parent: Path) -> None:
    root = parent / "voc"
    build(root)
    cold = timed(root)
    warm = statistics.median(timed(root) for _ in range(REPEATS))
    files = 2 * sum(SPLITS.values())
    print(
        json.dumps(
            {
                "files": files,
                "cold_seconds": round(cold, 3),
                "warm_seconds": round(warm, 3),
                "folder": str(parent),
            }
        )
    )


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(Path(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            main(Path(tmp))
