"""Stage: CAMs of the same training images side by side per experiment (paper Fig. 4)."""

import logging

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
from matplotlib.colors import ListedColormap  # noqa: E402
import numpy as np  # noqa: E402

from ..camstore import CamStore  # noqa: E402
from ..fileio import atomic_path, read_image, read_label, voc_palette  # noqa: E402
from ..manifest import Manifest  # noqa: E402

log = logging.getLogger(__name__)


def cams_figure(*, manifest_path, cam_paths: dict, num_images: int, out_path):
    """Rows: images (the first `num_images` training ids); columns: image, truth, CAMs."""
    manifest = Manifest.load(manifest_path)
    layout = manifest.layout()
    ids = manifest.ids["train"][:num_images]
    palette = ListedColormap(np.array(voc_palette()).reshape(256, 3) / 255.0)
    stores = {name: CamStore(path) for name, path in cam_paths.items()}
    columns = 2 + len(stores)
    figure, axes = plt.subplots(len(ids), columns, figsize=(2.2 * columns, 2.2 * len(ids)),
                                squeeze=False)
    try:
        for row, image_id in enumerate(ids):
            image = read_image(layout.image_path(image_id))
            truth = read_label(layout.mask_path(image_id), manifest.num_classes)
            axes[row, 0].imshow(image)
            axes[row, 1].imshow(truth, cmap=palette, vmin=0, vmax=255, interpolation="nearest")
            for column, (name, store) in enumerate(stores.items(), start=2):
                cams, _ = store[image_id]
                axes[row, column].imshow(image)
                axes[row, column].imshow(cams.max(axis=0), cmap="jet", alpha=0.5, vmin=0, vmax=1)
            for column, title in enumerate(["image", "truth", *stores]):
                axes[row, column].set_axis_off()
                if row == 0:
                    axes[row, column].set_title(f"CAM {title}" if column > 1 else title)
        figure.tight_layout()
        with atomic_path(out_path) as tmp:
            figure.savefig(tmp, format="png", dpi=80)
    finally:
        plt.close(figure)
        for store in stores.values():
            store.close()
