"""Class activation maps (Eq. 2) at image resolution, for the classes present in an image.

With several scales and/or horizontal flip, the ReLU'd attention maps of every scale and
flip are upsampled to the image size and summed before the max normalisation of Eq. 2. Each
scale is one forward pass over the whole batch, the flipped copies riding in the same batch.
"""

import numpy as np
import torch
import torch.nn.functional as F

from .inference import rescale

EPS = 1e-5


def normalise_cams(activation: torch.Tensor) -> torch.Tensor:
    """Eq. 2: ReLU(F_c) / max(F_c) per map over its last two axes; an all-zero map stays 0."""
    activation = activation.clamp(min=0)
    peak = activation.amax(dim=(-2, -1), keepdim=True)
    return activation / peak.clamp(min=EPS)


@torch.inference_mode()
def fused_activation(model, images: torch.Tensor, *, scales=(1.0,), flip=False) -> torch.Tensor:
    """Sum over scales (and flips) of ReLU(F) upsampled to the image size: (N, C, H, W)."""
    size = images.shape[-2:]
    count = images.shape[0]
    total = None
    for scale in scales:
        scaled = rescale(images, scale)
        if flip:
            scaled = torch.cat([scaled, scaled.flip(-1)])
        attention = F.interpolate(
            model(scaled).float().clamp(min=0), size=size, mode="bilinear", align_corners=False
        )
        if flip:
            attention = attention[:count] + attention[count:].flip(-1)
        total = attention if total is None else total + attention
    return total


def compute_cams_batch(
    model, images: torch.Tensor, class_ids_list, *, scales=(1.0,), flip=False
) -> list[np.ndarray]:
    """CAMs of same-size images (N, 3, H, W): one float32 (K, H, W) array per image, for its
    K classes `class_ids_list[i]` (1-based), in that order."""
    activation = fused_activation(model, images, scales=scales, flip=flip)
    # Every image's maps gathered and normalised at once, and copied to the host once: on a
    # GPU each per-image index tensor and copy back was a host-device synchronisation.
    rows = [row for row, class_ids in enumerate(class_ids_list) for _ in class_ids]
    channels = [c - 1 for class_ids in class_ids_list for c in class_ids]
    index = torch.tensor([rows, channels], dtype=torch.long).to(
        activation.device, non_blocking=True
    )
    maps = normalise_cams(activation[index[0], index[1]]).cpu().numpy()
    bounds = np.cumsum([len(class_ids) for class_ids in class_ids_list])[:-1]
    return np.split(maps, bounds)
