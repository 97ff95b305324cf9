"""Batch rescaling and multi-scale, max-fused segmentation inference."""

import torch
import torch.nn.functional as F

from i2crc_core.inference import predict_labels, rescale
from i2crc_core.models import build_segmenter


def test_rescale_is_identity_at_scale_one_and_bilinear_otherwise():
    images = torch.randn(2, 3, 8, 12)
    assert rescale(images, 1.0) is images
    assert rescale(images, 0.5).shape == (2, 3, 4, 6)


def test_predictions_fuse_the_scales_by_their_maximum():
    torch.manual_seed(0)
    model = build_segmenter("small", 3).eval()
    images = torch.randn(2, 3, 32, 40)
    with torch.no_grad():
        full = model(images)
        half = F.interpolate(
            model(rescale(images, 0.5)), size=(32, 40), mode="bilinear", align_corners=False
        )
    expected = torch.maximum(full, half).argmax(dim=1).to(torch.uint8).numpy()
    assert (predict_labels(model, images, scales=(1.0, 0.5)) == expected).all()
    assert predict_labels(model, images).dtype.name == "uint8"
