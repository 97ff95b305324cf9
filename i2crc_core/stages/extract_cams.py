"""Stage: CAMs (Eq. 2) of one shard of the training images into an HDF5 store."""

import logging

from tqdm import tqdm

from ..data.manifest import Manifest
from ..infra.camstore import CamStoreWriter
from ..infra.errors import ConfigError
from ..nets.cams import compute_cams_batch
from ..nets.checkpoints import load_model
from ..nets.device import (
    autocast,
    prepare_model,
    resolve_precision,
    select_device,
    set_torch_threads,
)
from ..nets.inference import (
    MIN_SCALED_SIDE,
    BackgroundWriter,
    check_scales,
    image_batches,
    off_heap,
)

log = logging.getLogger(__name__)


def shard_ids(ids: list[str], shard: str) -> list[str]:
    """Ids of shard "i-of-n" (Snakemake's scatter item): every n-th id starting at i-1."""
    try:
        index, count = (int(part) for part in shard.split("-of-"))
    except ValueError:
        raise ConfigError(f"shard '{shard}' is not of the form 'i-of-n'") from None
    if not 1 <= index <= count:
        raise ConfigError(f"shard '{shard}': index outside 1..{count}")
    return ids[index - 1 :: count]


def run(
    *,
    manifest_path,
    model_path,
    out_path,
    shard,
    input_size,
    scales,
    flip,
    normalise,
    device,
    precision,
    threads,
):
    """`input_size`: None (each image at its own size) or S (warped to S x S first);
    `normalise`: where Eq. 2 divides by the maximum (cams.NORMALISATIONS)."""
    set_torch_threads(threads)
    device = select_device(device)
    precision = resolve_precision(precision, device)
    manifest = Manifest.load(manifest_path)
    layout, ids = manifest.layout(), shard_ids(manifest.ids["train"], shard)
    if input_size is None:
        check_scales(scales, layout, ids, "config key 'cams.scales'")
    elif input_size * min(scales) < MIN_SCALED_SIDE:
        raise ConfigError(
            f"config key 'cams.scales': scale {min(scales)} makes the {input_size}-pixel input "
            f"of cams.input_size smaller than the networks' output stride of {MIN_SCALED_SIDE}"
        )
    labels = manifest.labels("train")
    model = prepare_model(
        load_model(model_path, device, expected_kind="classifier"), device, training=False
    )
    batches = image_batches(layout, ids, device, threads, input_size)
    with (
        CamStoreWriter(out_path) as store,
        BackgroundWriter(lambda entry: store.write(*entry)) as writer,
        tqdm(total=len(ids), desc="cams", mininterval=10) as bar,
    ):
        for batch in batches:
            class_ids = [labels[image_id] for image_id in batch["ids"]]
            with autocast(device, precision):
                cams = compute_cams_batch(
                    model,
                    batch["image"].to(device, non_blocking=True),
                    class_ids,
                    scales=scales,
                    flip=flip,
                    normalise=normalise,
                    sizes=batch["sizes"],
                )
            for image_id, image_cams, image_classes in zip(batch["ids"], cams, class_ids):
                writer.put((image_id, off_heap(image_cams), image_classes))
            bar.update(len(cams))
    log.info("shard %s: %d images", shard, len(ids))
