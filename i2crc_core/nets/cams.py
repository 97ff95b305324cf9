"""Class activation maps (Eq. 2) at image resolution, for the classes present in an image.

Each scale of `scales` (and with `flip` its mirrored copy, riding in the same batch) is one
forward pass over the whole batch, giving ReLU(F) at the attention map's resolution. Where
Eq. 2's division by the maximum happens is `normalise` (the config key `cams.normalise`):

- ``image``: every scale's and flip's ReLU(F) upsampled bilinearly to the image size, summed,
  then divided by its maximum;
- ``attention``: each ReLU(F) divided by its maximum at its own resolution, upsampled
  bicubically to the image size and clipped to [0, 1], then averaged over scales and flips. With
  one scale and no flip this is the authors' extraction (classification/scripts/test.py: ReLU,
  / max, cubic resize to the image), less their 8-bit rounding of the map (at most 1/255).

The network may see the images warped to a square (`image_batches`' `input_size`): the maps go
to each image's own size, given per image.
"""

import numpy as np
import torch
import torch.nn.functional as F

from .models import rescale

EPS = 1e-5
NORMALISATIONS = ("image", "attention")


def normalise_cams(activation: torch.Tensor) -> torch.Tensor:
    """Eq. 2: ReLU(F_c) / max(F_c) per map over its last two axes; an all-zero map stays 0."""
    activation = activation.clamp(min=0)
    peak = activation.amax(dim=(-2, -1), keepdim=True)
    return activation / peak.clamp(min=EPS)


@torch.inference_mode()
def attention_maps(model, images: torch.Tensor, *, scales=(1.0,), flip=False) -> list:
    """ReLU(F) (N, C, h, w) of every scale and, with `flip`, of its mirror image mirrored back,
    each at its own resolution, in the order scale 1 [, flipped], scale 2 [, flipped], ..."""
    count = images.shape[0]
    maps = []
    for scale in scales:
        scaled = rescale(images, scale)
        if flip:
            scaled = torch.cat([scaled, scaled.flip(-1)])
        attention = model(scaled).float().clamp(min=0)
        maps.append(attention[:count])
        if flip:
            maps.append(attention[count:].flip(-1))
    return maps


def _upsample(maps: torch.Tensor, size, mode: str) -> torch.Tensor:
    """Maps (K, h, w) resized to `size` (H, W)."""
    return F.interpolate(maps[None], size=tuple(size), mode=mode, align_corners=False)[0]


def cams_at(maps: list, size, normalise: str) -> torch.Tensor:
    """CAMs (K, H, W) at `size` from the attention maps of `attention_maps`, each (K, h, w)
    (the same K class channels of one image, or of images of one size), by `normalise`."""
    if normalise == "image":
        return normalise_cams(sum(_upsample(m, size, "bilinear") for m in maps))
    if normalise == "attention":
        total = sum(_upsample(normalise_cams(m), size, "bicubic").clamp(0.0, 1.0) for m in maps)
        return total / len(maps)
    raise ValueError(f"normalise {normalise!r} is not one of {NORMALISATIONS}")


def fused_activation(model, images: torch.Tensor, *, scales=(1.0,), flip=False) -> torch.Tensor:
    """Sum over scales (and flips) of ReLU(F) upsampled to the image size: (N, C, H, W), what
    ``normalise="image"`` divides by its maximum."""
    size = images.shape[-2:]
    return sum(
        F.interpolate(m, size=size, mode="bilinear", align_corners=False)
        for m in attention_maps(model, images, scales=scales, flip=flip)
    )


def compute_cams_batch(
    model,
    images: torch.Tensor,
    class_ids_list,
    *,
    scales=(1.0,),
    flip=False,
    normalise="image",
    sizes=None,
) -> list[np.ndarray]:
    """CAMs of same-size images (N, 3, h, w): one float32 (K, H, W) array per image, for its
    K classes `class_ids_list[i]` (1-based), in that order, at its size `sizes[i]` (H, W)
    (default: the input's)."""
    sizes = [tuple(images.shape[-2:])] * len(images) if sizes is None else list(map(tuple, sizes))
    maps = attention_maps(model, images, scales=scales, flip=flip)
    # Every image's maps gathered at once, and those of each output size made and copied to
    # the host at once: on a GPU each per-image index tensor and copy back was a host-device
    # synchronisation.
    result = [None] * len(class_ids_list)
    for size in dict.fromkeys(sizes):
        members = [i for i, image_size in enumerate(sizes) if image_size == size]
        rows = [i for i in members for _ in class_ids_list[i]]
        channels = [c - 1 for i in members for c in class_ids_list[i]]
        index = torch.tensor([rows, channels], dtype=torch.long).to(
            images.device, non_blocking=True
        )
        cams = cams_at([m[index[0], index[1]] for m in maps], size, normalise).cpu().numpy()
        bounds = np.cumsum([len(class_ids_list[i]) for i in members])[:-1]
        for i, image_cams in zip(members, np.split(cams, bounds)):
            result[i] = image_cams
    return result
