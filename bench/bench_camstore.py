"""Size and speed of the HDF5 CAM store on 1,000 VOC-sized images (single thread).

Prints one JSON object. CAMs: 375x500, 1-3 classes per image, smooth synthetic maps as
produced by an OS-8 classifier (upsampled, ReLU'd, max-normalised; see _synthetic_maps.py).
Measured for a single store (LZF, the default, and gzip level 4 for comparison), a virtual
merge of 4 shards and a copy merge of the same shards:
- bytes relative to the same CAMs saved as float32 .npy files (target <= 30 %);
- time to read one image by id, in random order over all 1,000 ids (target mean <= 5 ms;
  files are in the page cache, as they are right after extraction);
- write time per image (CAM generation excluded).
"""

import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _synthetic_maps as maps  # noqa: E402
import numpy as np  # noqa: E402

from i2crc_core.infra.camstore import CamStore, CamStoreWriter, merge_cam_stores  # noqa: E402

NUM_IMAGES = 1000
NUM_SHARDS = 4
NPY_HEADER_BYTES = 128


def image_items(start, stop):
    """Deterministic (id, cams, class_ids) for images start..stop-1, generated lazily."""
    for index in range(start, stop):
        cams, class_ids = maps.cams(np.random.default_rng(index))
        yield f"2012_{index:06d}", cams, class_ids


def write(path, start, stop, **options):
    """Write images start..stop-1; returns (seconds writing incl. close, float32 npy bytes)."""
    generating, npy_bytes = 0.0, 0
    t_start = time.perf_counter()
    with CamStoreWriter(path, **options) as writer:
        items = image_items(start, stop)
        while True:
            t0 = time.perf_counter()
            item = next(items, None)
            generating += time.perf_counter() - t0
            if item is None:
                break
            npy_bytes += item[1].size * 4 + NPY_HEADER_BYTES
            writer.write(*item)
    return time.perf_counter() - t_start - generating, npy_bytes


def read_times(path) -> dict:
    with CamStore(path) as store:
        order = np.random.default_rng(1).permutation(store.ids)
        times = []
        for image_id in order:
            t0 = time.perf_counter()
            store[image_id]
            times.append(time.perf_counter() - t0)
    times_ms = 1e3 * np.asarray(times)
    return {
        "read_mean_ms": round(float(times_ms.mean()), 2),
        "read_p95_ms": round(float(np.percentile(times_ms, 95)), 2),
    }


def main() -> None:
    results = {
        "benchmark": "camstore",
        "images": NUM_IMAGES,
        "size_hw": [maps.HEIGHT, maps.WIDTH],
        "classes_per_image": "1-3",
    }
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as directory:
        directory = Path(directory)
        for compression in ("lzf", "gzip"):
            path = directory / f"single_{compression}.h5"
            seconds, npy_bytes = write(path, 0, NUM_IMAGES, compression=compression)
            results[f"single_{compression}"] = {
                "bytes": path.stat().st_size,
                "fraction_of_float32_npy": round(path.stat().st_size / npy_bytes, 3),
                "write_ms_per_image": round(1e3 * seconds / NUM_IMAGES, 2),
                **read_times(path),
            }
            results["float32_npy_bytes"] = npy_bytes
            path.unlink()

        bounds = np.linspace(0, NUM_IMAGES, NUM_SHARDS + 1).astype(int)
        shards, shard_seconds = [], 0.0
        for index in range(NUM_SHARDS):
            shard = directory / f"shard{index}.h5"
            seconds, _ = write(shard, bounds[index], bounds[index + 1])
            shard_seconds += seconds
            shards.append(shard)
        shard_bytes = sum(s.stat().st_size for s in shards)
        for mode in ("virtual", "copy"):
            merged = directory / f"merged_{mode}.h5"
            t0 = time.perf_counter()
            merge_cam_stores(shards, merged, mode=mode)
            merge_seconds = time.perf_counter() - t0
            stored = merged.stat().st_size + (shard_bytes if mode == "virtual" else 0)
            results[f"merged_{mode}_{NUM_SHARDS}_shards"] = {
                "merged_file_bytes": merged.stat().st_size,
                "fraction_of_float32_npy": round(stored / results["float32_npy_bytes"], 3),
                "shard_write_ms_per_image": round(1e3 * shard_seconds / NUM_IMAGES, 2),
                "merge_s": round(merge_seconds, 2),
                **read_times(merged),
            }
    results["targets"] = {"fraction_of_float32_npy": 0.30, "read_mean_ms": 5.0}
    print(json.dumps(results))


if __name__ == "__main__":
    main()
