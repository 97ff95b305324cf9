"""Inference helpers: batching same-size images, and multi-scale segmentation.

Segmentation logits of several scales are fused by their maximum (ref code: scales 1, 0.75,
0.5); each scale is one forward over the whole batch.
"""

import itertools

import numpy as np
import torch
import torch.nn.functional as F


def same_size_batches(dataset, batch_size: int):
    """Lists of consecutive samples of equal image size, at most `batch_size` long."""
    samples = (dataset[index] for index in range(len(dataset)))
    for _, group in itertools.groupby(samples, key=lambda sample: tuple(sample["size"])):
        group = list(group)
        for start in range(0, len(group), batch_size):
            yield group[start : start + batch_size]


def rescale(images: torch.Tensor, scale: float) -> torch.Tensor:
    """A batch (N, C, H, W) resized bilinearly by `scale`; unchanged at scale 1."""
    if scale == 1:
        return images
    return F.interpolate(images, scale_factor=scale, mode="bilinear", align_corners=False)


@torch.inference_mode()
def predict_labels(model, images: torch.Tensor, scales=(1.0,)) -> np.ndarray:
    """Labels uint8 (N, H, W) of same-size images (N, 3, H, W)."""
    size = images.shape[-2:]
    fused = None
    for scale in scales:
        scaled = rescale(images, scale)
        logits = F.interpolate(model(scaled).float(), size=size, mode="bilinear", align_corners=False)
        fused = logits if fused is None else torch.maximum(fused, logits)
    return fused.argmax(dim=1).to(torch.uint8).cpu().numpy()
