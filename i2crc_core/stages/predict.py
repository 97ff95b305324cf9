"""Stage: segmentation predictions (palette PNGs) for the images of one split, refined by the
dense CRF (crf.py) when `crf` holds its settings."""

from contextlib import nullcontext

from ..data.manifest import Manifest
from ..infra.fileio import path_in, write_label
from ..method.crf import DenseCRF, require_pydensecrf
from ..nets.checkpoints import load_model
from ..nets.device import prepare_model, resolve_precision, select_device, set_torch_threads
from ..nets.inference import check_scales, infer_images, predict_labels


def run(
    *, manifest_path, model_path, split, out_dir, scales, fusion, crf, device, precision, threads
):
    set_torch_threads(threads)
    device = select_device(device)
    precision = resolve_precision(precision, device)
    manifest = Manifest.load(manifest_path)
    layout, ids = manifest.layout(), manifest.ids[split]
    check_scales(scales, layout, ids, "config key 'segmentation.inference_scales'")
    if crf is not None:
        require_pydensecrf("config key 'segmentation.crf.enabled'")
    model = prepare_model(
        load_model(model_path, device, expected_kind="segmenter"), device, training=False
    )
    with DenseCRF(crf, workers=threads) if crf is not None else nullcontext() as refine:
        infer_images(
            layout,
            ids,
            lambda images: predict_labels(model, images, scales, refine, fusion),
            lambda image_id, label: write_label(path_in(out_dir, image_id, ".png"), label),
            device=device,
            precision=precision,
            threads=threads,
            desc=f"predict {split}",
        )
