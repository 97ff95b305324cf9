"""Stage: the report's figures — CAMs per experiment (paper Fig. 4), training curves, and an
example figure per experiment in the paper's style (image to ground truth, stage by stage)."""

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from ..data.datasets import ImageDataset
from ..data.manifest import Manifest
from ..data.synthetic import named_colour
from ..infra.camstore import CamStore
from ..infra.fileio import IGNORE, read_gray, read_image, read_label, voc_palette
from ..method.crf import DenseCRF, require_pydensecrf
from ..method.losses import LOSS_PARTS
from ..nets.checkpoints import load_model
from ..nets.device import CPU
from ..nets.inference import check_scales, predict_labels
from ..nets.training import read_curve
from ..report.plotting import as_written, cam_overlay, plt, save_png

PALETTE = np.array(voc_palette(), dtype=np.uint8).reshape(256, 3)
CELL_INCHES = 2.0
LEGEND_INCHES = 0.5
# Space between rows of pictures, as a fraction of a row's height: tight_layout leaves none
# between axes without ticks, so rows of images would touch.
ROW_GAP = 0.1
LEGEND_HANDLE = 5.0  # font sizes
# (statistic, legend, line style, marker, opacity): inside solid, outside dashed; max paler
ATTENTION_LINES = [
    ("att_in_mean", "mean inside", "-", "o", 1.0),
    ("att_out_mean", "mean outside", "--", "o", 1.0),
    ("att_in_max", "max inside", "-", "^", 0.45),
    ("att_out_max", "max outside", "--", "^", 0.45),
]


def label_palette(class_names) -> np.ndarray:
    """(256, 3) uint8 colours of label values: VOC's palette, except that a class named after
    a colour (the synthetic benchmark's `{colour}_{shape}`) is drawn in that colour."""
    palette = PALETTE.copy()
    for value, name in enumerate(class_names, start=1):
        colour = named_colour(name)
        if colour is not None:
            palette[value] = colour.round().astype(np.uint8)
    return palette


def class_legend(figure, class_names, palette, values) -> None:
    """A legend below the figure of the label `values` shown, in `palette` colours, named by
    `class_names` (1-based) as they are written."""
    names = ["background", *class_names]
    legend = [
        Patch(
            color=palette[value] / 255.0,
            label="ignore" if value == IGNORE else as_written(names[value]),
        )
        for value in sorted(values)
    ]
    figure.legend(handles=legend, loc="lower center", ncol=len(legend), frameon=False, fontsize=9)


def _show(axes, picture, title=None, palette=PALETTE):
    """An RGB image, or a label map (H, W) in `palette` colours, without ticks."""
    axes.imshow(palette[picture] if picture.ndim == 2 else picture, interpolation="nearest")
    axes.set_axis_off()
    if title:
        axes.set_title(title, fontsize=10)


def cams_figure(*, manifest_path, cam_paths: dict, num_images: int, out_path):
    """Rows: images (the first `num_images` training ids); columns: image, truth, CAMs."""
    manifest = Manifest.load(manifest_path)
    layout = manifest.layout()
    ids = manifest.ids["train"][:num_images]
    stores = {name: CamStore(path) for name, path in cam_paths.items()}
    columns = 2 + len(stores)
    figure, axes = plt.subplots(
        len(ids), columns, squeeze=False, figsize=(CELL_INCHES * columns, CELL_INCHES * len(ids))
    )
    try:
        for row, image_id in enumerate(ids):
            image = read_image(layout.image_path(image_id))
            _show(axes[row, 0], image, "image" if row == 0 else None)
            _show(
                axes[row, 1],
                read_label(layout.mask_path(image_id), manifest.num_classes),
                "truth" if row == 0 else None,
                label_palette(manifest.class_names),
            )
            for column, (name, store) in enumerate(stores.items(), start=2):
                cams, _ = store[image_id]
                _show(
                    axes[row, column],
                    cam_overlay(image, cams.max(axis=0)),
                    f"CAM {name}" if row == 0 else None,
                )
        figure.tight_layout()
        figure.subplots_adjust(hspace=ROW_GAP)
        save_png(figure, out_path)
    finally:
        for store in stores.values():
            store.close()


def training_figure(*, classifier_curves: dict, segmentation_curves: dict, out_path):
    """Top row: the classifier's loss parts per epoch, one line per experiment; middle: its
    attention statistics per epoch, one panel per experiment; bottom: the segmentation loss
    per iteration of each round, one line per experiment. `classifier_curves`: experiment ->
    TSV; `segmentation_curves`: round name -> {experiment -> TSV}."""
    parts = [part for part in LOSS_PARTS if part != "total"] + ["total"]
    rounds = list(segmentation_curves)
    curves = {experiment: read_curve(path) for experiment, path in classifier_curves.items()}
    colours = {name: f"C{index}" for index, name in enumerate(curves)}
    figure = plt.figure(figsize=(3.2 * len(parts), 9.6), layout="constrained")
    # a subfigure per row: each row divides the width by its own number of panels
    top, middle, bottom = figure.subfigures(3, 1)
    loss_row = top.subplots(1, len(parts), squeeze=False)[0]
    attention_row = middle.subplots(1, len(curves), squeeze=False, sharey=True)[0]
    segmentation_row = bottom.subplots(1, len(rounds), squeeze=False)[0]
    for part, panel in zip(parts, loss_row):
        for experiment, curve in curves.items():
            panel.plot(
                curve["epoch"], curve[part], marker=".", color=colours[experiment], label=experiment
            )
        panel.set_title(f"classifier: {part}", fontsize=10)
        panel.set_xlabel("epoch")
    _attention_row(curves, attention_row, colours)
    for name, panel in zip(rounds, segmentation_row):
        for experiment, path in segmentation_curves[name].items():
            curve = read_curve(path)
            panel.plot(
                curve["iteration"],
                curve["loss"],
                marker=".",
                color=colours.get(experiment),
                label=experiment,
            )
        panel.set_title(f"segmentation loss: {name}", fontsize=10)
        panel.set_xlabel("iteration")
    for panel in (*loss_row, *attention_row, *segmentation_row):
        panel.xaxis.set_major_locator(MaxNLocator(integer=True))
        panel.grid(alpha=0.3)
        panel.tick_params(labelsize=8)
    handles, labels = loss_row[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside upper center", ncol=len(labels), frameon=False)
    save_png(figure, out_path)


def _attention_row(curves: dict, panels: list, colours: dict) -> None:
    """One panel per experiment (`panels` share their y axis), so that both the gap between
    inside and outside and the experiments' magnitudes compare. Symmetric log when the lines'
    ranges differ by two orders of magnitude or more (CSD alone drives F to thousands):
    linear within ±1, logarithmic beyond, as F and its means may be negative."""
    peaks = [
        np.abs(values[np.isfinite(values)]).max(initial=0.0)
        for curve in curves.values()
        for values in (curve[stat] for stat, *_ in ATTENTION_LINES)
    ]
    logarithmic = max(peaks) >= 100 * max(min(peaks), 1.0)
    for (experiment, curve), panel in zip(curves.items(), panels):
        for stat, _, style, marker, alpha in ATTENTION_LINES:
            panel.plot(
                curve["epoch"],
                curve[stat],
                linestyle=style,
                marker=marker,
                markersize=4,
                alpha=alpha,
                color=colours[experiment],
            )
        panel.set_title(f"attention F: {experiment}", fontsize=10)
        panel.set_xlabel("epoch")
    if logarithmic:
        panels[0].set_yscale("symlog", linthresh=1.0)
    panels[0].set_ylabel("F, image's classes" + (" (symlog)" if logarithmic else ""), fontsize=8)
    # the legend of line styles, grey: the colour is the experiment's, as in the other rows;
    # handles long enough, with the markers at their ends, that a dash shows as one
    styles = [
        Line2D(
            [],
            [],
            color="0.35",
            linestyle=style,
            marker=marker,
            markersize=4,
            alpha=alpha,
            label=label,
        )
        for _, label, style, marker, alpha in ATTENTION_LINES
    ]
    panels[0].legend(
        handles=styles, fontsize=7, loc="best", handlelength=LEGEND_HANDLE, numpoints=2
    )


def examples_figure(
    *,
    manifest_path,
    saliency_dir,
    cams_path,
    pseudo_dir,
    refined_dir,
    model_path,
    scales,
    fusion,
    crf,
    num_images: int,
    out_path,
):
    """One experiment, rows: the first `num_images` training images; columns: image,
    saliency, CAM, pseudo label, refined label, the retrained model's prediction (its scales
    fused as `fusion` says, after the dense CRF when `crf` holds its settings, as the predict
    stage makes it), truth."""
    manifest = Manifest.load(manifest_path)
    layout = manifest.layout()
    ids = manifest.ids["train"][:num_images]
    check_scales(scales, layout, ids, "config key 'segmentation.inference_scales'")
    if crf is not None:
        require_pydensecrf("config key 'segmentation.crf.enabled'")
    refine = DenseCRF(crf) if crf is not None else None
    model = load_model(model_path, CPU, expected_kind="segmenter")
    titles = [
        f"({letter}) {title}"
        for letter, title in zip(
            "abcdefg",
            [
                "image",
                "saliency",
                "CAM",
                "pseudo label",
                "refined label",
                "prediction (round 2, CRF)" if crf is not None else "prediction (round 2)",
                "ground truth",
            ],
        )
    ]
    height = CELL_INCHES * len(ids) + LEGEND_INCHES
    figure, axes = plt.subplots(
        len(ids), len(titles), squeeze=False, figsize=(CELL_INCHES * len(titles), height)
    )
    shown = set()
    palette = label_palette(manifest.class_names)
    with CamStore(cams_path) as store:
        for row, image_id in enumerate(ids):
            image = read_image(layout.image_path(image_id))
            saliency = read_gray(f"{saliency_dir}/{image_id}.png")
            cams, _ = store[image_id]
            labels = [
                read_label(f"{folder}/{image_id}.png", manifest.num_classes)
                for folder in (pseudo_dir, refined_dir)
            ]
            prediction = predict_labels(
                model, ImageDataset(layout, [image_id])[0]["image"][None], scales, refine, fusion
            )[0]
            truth = read_label(layout.mask_path(image_id), manifest.num_classes)
            pictures = [
                image,
                np.repeat(saliency[..., None], 3, axis=2),
                cam_overlay(image, cams.max(axis=0)),
                *labels,
                prediction,
                truth,
            ]
            for column, picture in enumerate(pictures):
                _show(axes[row, column], picture, titles[column] if row == 0 else None, palette)
            for label in (*labels, prediction, truth):
                shown.update(np.unique(label).tolist())
    class_legend(figure, manifest.class_names, palette, shown)
    figure.tight_layout(rect=(0, LEGEND_INCHES / height, 1, 1))
    figure.subplots_adjust(hspace=ROW_GAP)
    save_png(figure, out_path)
