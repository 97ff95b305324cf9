"""Peak resident memory of the stages against the number of images, on VOC-sized images.

    python -m bench.bench_stage_memory [--images 50 200] [--old 89f21de] [--input-size 256]
        [--scales 1] [--flip] [--normalise attention] [--backbone small] [--threads 2]
        [--repeats 1] [--pipeline]

Writes a VOC-layout dataset of each size (JPEGs of VOC's six common sizes, 375x500 to 500x333,
in shuffled order, 20 classes, 1-3 object rectangles per mask, saliency maps), its manifest
(`prepare_dataset`) and a classifier (`small`, or `--backbone vgg16`), then runs the CAM stage
(`extract_cams.run`, one shard of every image, on the CPU) in a fresh process per run, once from
the library at the commit `--old` (`git archive`d into a temporary folder) and once from the
working tree, taking turns (old, new, new, old, ...) so that a load on the machine falls on
both. Each run reports its wall seconds, its CPU seconds (user + system: on a shared machine
the wall time follows the other load, the CPU time much less) and its peak resident memory
(`ru_maxrss` of the process, what a SLURM job's memory limit counts). Defaults: the VOC
preset's CAM settings (warped to 256 x 256, one scale, no flip, normalised per attention map
and resized to the image), two sizes small enough for a few minutes; `--input-size 0 --scales
1 0.75 0.5 --flip` is the former preset's, each image at its own size (the heaviest: three
scales and their flips). The figures of docs/benchmarks.md §"Memory of the stages" come from
`--images 200 800`. `--old` must know the CAM keys given (cams.input_size and cams.normalise
exist since 371649d).

`--pipeline` also runs every stage of the pipeline through Snakemake on each dataset (working
tree only; `small` networks on the CPU, one experiment, one CAM shard, short trainings) and
reports each rule's `max_rss` from its `benchmark:` file.

Prints one JSON object: the machine (CPU model, `torch.backends.cpu.get_cpu_capability()`,
threads), per image count and side the runs' seconds and peak MiB, and per side the ratio of the
peak at the largest count to the peak at the smallest.
"""

import argparse
import csv
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch
import yaml

from i2crc_core.data.layout import VOC_DIRS
from i2crc_core.infra.fileio import write_gray, write_image, write_label
from i2crc_core.infra.provenance import cpu_model
from i2crc_core.nets.checkpoints import save_model
from i2crc_core.nets.models import build_classifier
from i2crc_core.stages import prepare_dataset

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).parent / "snakemake"
SIZES = [(375, 500), (500, 375), (333, 500), (500, 333), (366, 500), (400, 500)]
WEIGHTS = [0.45, 0.15, 0.2, 0.1, 0.05, 0.05]
NUM_CLASSES, VAL_IMAGES = 20, 8
SPLITS = {"train": "train", "val": "val"}

# One run of the CAM stage in a fresh interpreter that imports `i2crc_core` from the tree given
# first on its path: the stage's own peak, not this process's.
STAGE_RUN = """
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
from i2crc_core.stages import extract_cams
start = time.perf_counter()
extract_cams.run(**json.loads(sys.argv[2]))
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({
    "seconds": round(time.perf_counter() - start, 1),
    "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),
    "peak_rss_mib": round(usage.ru_maxrss / 1024),
}))
"""


def make_dataset(root: Path, count: int) -> None:
    """`count` training and VAL_IMAGES evaluation images in the VOC layout under `root`, and a
    saliency map per image in `root`/saliency."""
    rng = np.random.default_rng(count)
    ids = [f"2008_{index:06d}" for index in range(count + VAL_IMAGES)]
    for image_id, pick in zip(ids, rng.choice(len(SIZES), len(ids), p=WEIGHTS)):
        height, width = SIZES[pick]
        coarse = rng.integers(0, 256, (height // 16 + 1, width // 16 + 1, 3), dtype=np.uint8)
        image = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
        write_image(root / "JPEGImages" / f"{image_id}.jpg", image)
        mask = np.zeros((height, width), np.uint8)
        classes = rng.choice(NUM_CLASSES, rng.integers(1, 4), replace=False) + 1
        for class_id in classes:
            top, left = rng.integers(0, height // 2), rng.integers(0, width // 2)
            mask[top : top + height // 3, left : left + width // 3] = class_id
        write_label(root / "SegmentationClass" / f"{image_id}.png", mask)
        write_gray(root / "saliency" / f"{image_id}.png", (mask > 0).astype(np.uint8) * 255)
    lists = root / VOC_DIRS["split_dir"]
    lists.mkdir(parents=True)
    (lists / "train.txt").write_text("".join(f"{i}\n" for i in ids[:count]))
    (lists / "val.txt").write_text("".join(f"{i}\n" for i in ids[count:]))


def prepare(root: Path, backbone: str) -> tuple[Path, Path]:
    """The dataset's manifest and a classifier of 20 classes (random weights: the memory and
    time of CAM extraction do not depend on them)."""
    manifest = root / "manifest.json"
    prepare_dataset.run(
        root=str(root),
        layout=VOC_DIRS,
        splits=SPLITS,
        num_classes=NUM_CLASSES,
        image_labels="masks",
        manifest_path=str(manifest),
        label_lists={role: str(root / f"labels_{role}.txt") for role in SPLITS},
    )
    torch.manual_seed(0)
    model = root / "classifier.pt"
    save_model(model, build_classifier(backbone, NUM_CLASSES))
    return manifest, model


def old_library(commit: str, folder: Path) -> Path:
    """`i2crc_core` as of `commit`, extracted under `folder`, which is returned."""
    folder.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "archive", commit, "i2crc_core"], cwd=REPO, check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def cam_stage(tree: Path, manifest: Path, model: Path, out: Path, args) -> dict:
    settings = {
        "manifest_path": str(manifest),
        "model_path": str(model),
        "out_path": str(out),
        "shard": "1-of-1",
        "input_size": args.input_size or None,
        "scales": args.scales,
        "flip": args.flip,
        "normalise": args.normalise,
        "device": "cpu",
        "precision": "fp32",
        "threads": args.threads,
    }
    done = subprocess.run(
        [sys.executable, "-c", STAGE_RUN, str(tree), json.dumps(settings)],
        check=True,
        capture_output=True,
        text=True,
    )
    out.unlink()
    return json.loads(done.stdout.splitlines()[-1])


def pipeline_memory(root: Path, work: Path, args) -> dict[str, float]:
    """Every rule's largest `max_rss` (MiB) in a pipeline run on the dataset at `root`."""
    overlay = {
        "output_dir": str(work / "results"),
        "device": "cpu",
        "run_experiments": ["i2crc"],
        "dataset": {"kind": "voc", "root": str(root), "num_classes": NUM_CLASSES},
        "saliency": {"source": "folder", "folder": str(root / "saliency")},
        "pretraining": {"epochs": 1, "input_size": 64},
        "classifier": {"epochs": 1, "batch_size": 5, "input_size": 256, "lr_decay_epochs": [1]},
        "cams": {
            "input_size": args.input_size or None,
            "scales": args.scales,
            "flip": args.flip,
            "normalise": args.normalise,
            "shards": 1,
        },
        "segmentation": {"iterations": 4, "batch_size": 2, "crop_size": 321},
        "evaluation": {"figure_images": 2},
        "resources": {
            stage: {"gpu": 0, "threads": args.threads}
            for stage in ("pretrain", "train_classifier", "extract_cams", "train_segmentation")
        },
    }
    (work / "overlay.yaml").write_text(yaml.safe_dump(overlay))
    subprocess.run(
        [str(SNAKEMAKE), "--cores", str(args.threads), "--quiet", "all"]
        + ["--configfile", "config.yaml", str(work / "overlay.yaml")],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    peaks: dict[str, float] = {}
    for path in (work / "results").rglob("benchmarks/**/*.tsv"):
        parts = path.relative_to(work / "results").parts
        rule = parts[parts.index("benchmarks") + 1].removesuffix(".tsv")
        with open(path, newline="") as handle:
            rss = max(float(row["max_rss"]) for row in csv.DictReader(handle, delimiter="\t"))
        peaks[rule] = max(peaks.get(rule, 0.0), round(rss))
    return dict(sorted(peaks.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, nargs="+", default=[50, 200])
    # main before the merge of the fix: the CAM stage of the preset's keys, without off_heap.
    parser.add_argument("--old", default="89f21de", help="the commit to compare with")
    parser.add_argument(
        "--input-size", type=int, default=256, help="cams.input_size; 0: each image at its size"
    )
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0])
    parser.add_argument("--flip", action="store_true")
    parser.add_argument("--normalise", default="attention", choices=["image", "attention"])
    parser.add_argument("--backbone", default="small", choices=["small", "vgg16"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1, help="runs per side and size")
    parser.add_argument("--pipeline", action="store_true", help="every stage, through Snakemake")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="stage-memory-"))
    trees = {"old": old_library(args.old, scratch / "old"), "new": REPO}
    runs: dict = {}
    for count in args.images:
        root = scratch / f"voc{count}"
        make_dataset(root, count)
        manifest, model = prepare(root, args.backbone)
        sides = {"old": [], "new": []}
        for turn in range(args.repeats):
            # old, new, new, old, ...: a trend in the machine's load hits both sides.
            for side in ("old", "new") if turn % 2 == 0 else ("new", "old"):
                sides[side].append(cam_stage(trees[side], manifest, model, root / "cams.h5", args))
        runs[count] = {"extract_cams": sides}
        if args.pipeline:
            runs[count]["pipeline_max_rss_mib"] = pipeline_memory(
                root, scratch / f"run{count}", args
            )
    shutil.rmtree(scratch)
    smallest, largest = min(args.images), max(args.images)

    def peak(count, side):
        return max(run["peak_rss_mib"] for run in runs[count]["extract_cams"][side])

    print(
        json.dumps(
            {
                "benchmark": "stage_memory",
                "machine": {
                    "cpu": cpu_model(),
                    "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                    "threads": args.threads,
                },
                "old": args.old,
                "cams": {
                    "input_size": args.input_size or None,
                    "scales": args.scales,
                    "flip": args.flip,
                    "normalise": args.normalise,
                    "backbone": args.backbone,
                },
                "runs": runs,
                f"peak_ratio_{largest}_over_{smallest}": {
                    side: round(peak(largest, side) / peak(smallest, side), 2)
                    for side in ("old", "new")
                },
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
