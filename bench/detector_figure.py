"""The simulated saliency detector's quality at several image sizes, and a figure of its maps.

    python bench/detector_figure.py [--seeds 0 1 2] [--sizes 64 96] [--work DIR]
                                    [--figure docs/figures/detector.png] [--rows 6]

For each seed and image size, the synthetic benchmark (5 classes, 1,000 training and 200
validation images, 64 % simple) is generated under --work (a temporary folder unless given)
and every training image gets its map from `saliency.simulate_detector` at the schema's
defaults, drawn exactly as the saliency stage draws it (`image_rng(seed, image_id)`). Prints
one JSON object: per seed and size, the binary mIoU at threshold 0.5 over all training images
(`miou_all`) and over the simple ones (`miou_simple`), as saliency/quality.json reports them,
and the share of background pixels (truth 0) whose saliency is >= 32/255, which the
pseudo-label rule turns into "ignore" by saliency alone (`background_ge_32`); then their means
per size. The figure shows the first --rows training images of the first seed at the first
size of 96 or more (else the largest): image | ground truth | saliency map | map >= 0.5.
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from i2crc_core.data.saliency import image_rng, saliency_miou, simulate_detector  # noqa: E402
from i2crc_core.data.synthetic import generate  # noqa: E402
from i2crc_core.infra.config import defaults  # noqa: E402
from i2crc_core.infra.fileio import IGNORE, read_image, read_label  # noqa: E402

NUM_CLASSES = 5
BACKGROUND_SALIENCY = 32  # /255: pseudo_labels.bg_saliency


def _dataset(work: Path, seed: int, size: int) -> Path:
    root = work / f"synthetic_seed{seed}_{size}px"
    generate(
        root, seed=seed, num_classes=NUM_CLASSES, num_train=1000, num_val=200,
        image_size=size, simple_fraction=0.64,
    )  # fmt: skip
    return root


def _train_ids(root: Path) -> list[str]:
    return (root / "ImageSets" / "Segmentation" / "train.txt").read_text().split()


def _measure(root: Path, seed: int, simulated: dict) -> dict:
    masks, maps, simple = [], [], []
    for image_id in _train_ids(root):
        mask = read_label(root / "SegmentationClass" / f"{image_id}.png", NUM_CLASSES)
        masks.append(mask)
        maps.append(simulate_detector(mask, image_rng(seed, image_id), **simulated))
        simple.append(len(np.unique(mask[(mask > 0) & (mask != IGNORE)])) == 1)
    stacked_masks, stacked_maps = np.stack(masks), np.stack(maps)
    background = stacked_masks == 0
    return {
        "miou_all": saliency_miou(maps, masks),
        "miou_simple": saliency_miou(
            [m for m, s in zip(maps, simple) if s], [m for m, s in zip(masks, simple) if s]
        ),
        "background_ge_32": float(
            np.count_nonzero(stacked_maps[background] >= BACKGROUND_SALIENCY)
            / np.count_nonzero(background)
        ),
        "simple_images": int(sum(simple)),
    }


def _figure(root: Path, seed: int, simulated: dict, rows: int, path: Path, size: int) -> None:
    from i2crc_core.report.plotting import plt, save_png

    ids = _train_ids(root)[:rows]
    colours = plt.get_cmap("tab10")
    figure, axes = plt.subplots(len(ids), 4, figsize=(8.4, 2.2 * len(ids)), squeeze=False)
    titles = ("image", "ground truth", "simulated saliency", "saliency >= 0.5")
    for row, image_id in enumerate(ids):
        mask = read_label(root / "SegmentationClass" / f"{image_id}.png", NUM_CLASSES)
        saliency = simulate_detector(mask, image_rng(seed, image_id), **simulated)
        truth = np.zeros((*mask.shape, 3))
        for class_id in range(1, NUM_CLASSES + 1):
            truth[mask == class_id] = colours(class_id - 1)[:3]
        iou = saliency_miou([saliency], [mask])
        panels = (
            (read_image(root / "JPEGImages" / f"{image_id}.jpg"), {}),
            (truth, {}),
            (saliency, {"cmap": "gray", "vmin": 0, "vmax": 255}),
            (saliency >= 128, {"cmap": "gray", "vmin": 0, "vmax": 1}),
        )
        for column, (panel, style) in enumerate(panels):
            axis = axes[row, column]
            axis.imshow(panel, interpolation="nearest", **style)
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                axis.set_title(titles[column], fontsize=10)
        axes[row, 0].set_ylabel(image_id, fontsize=8)
        axes[row, 3].set_xlabel(f"binary mIoU {iou:.2f}", fontsize=8)
    figure.suptitle(
        f"Simulated saliency detector (defaults), synthetic benchmark seed {seed}, {size} px",
        fontsize=10,
    )
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    save_png(figure, path)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 96])
    parser.add_argument(
        "--work",
        type=Path,
        default=None,
        help="where the data sets go (default: a temporary folder)",
    )
    parser.add_argument("--figure", type=Path, default=REPO / "docs" / "figures" / "detector.png")
    parser.add_argument("--rows", type=int, default=6)
    args = parser.parse_args(argv)

    simulated = defaults()["saliency"]["simulated"]
    figure_size = min((s for s in args.sizes if s >= 96), default=max(args.sizes))
    with tempfile.TemporaryDirectory(prefix="detector_figure_") as scratch:
        work = args.work if args.work is not None else Path(scratch)
        results = []
        for size in args.sizes:
            for seed in args.seeds:
                root = _dataset(work, seed, size)
                results.append(
                    {"seed": seed, "image_size": size, **_measure(root, seed, simulated)}
                )
                if seed == args.seeds[0] and size == figure_size:
                    _figure(root, seed, simulated, args.rows, args.figure, size)
    means = {
        str(size): {
            key: float(np.mean([r[key] for r in results if r["image_size"] == size]))
            for key in ("miou_simple", "miou_all", "background_ge_32")
        }
        for size in args.sizes
    }
    print(
        json.dumps(
            {
                "simulated": simulated,
                "per_seed": results,
                "mean_per_size": means,
                "figure": str(args.figure),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
