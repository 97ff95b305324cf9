"""Batch rescaling and multi-scale, max-fused segmentation inference."""

import torch
import torch.nn.functional as F

from i2crc_core.nets.inference import predict_labels, rescale
from i2crc_core.nets.models import build_segmenter


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


def test_logits_fusion_is_the_ref_codes_msc_inference():
    """The ref code's MSC in eval mode returns the pixel-wise maximum of the scale-1 logits and
    those of the input resized by 0.5 and 0.75, brought bilinearly to the scale-1 logits' size
    (libs/models/msc.py:24-45); main.py:349-353 upsamples it bilinearly to the image and takes
    the argmax. Transcribed here for scales 1, 0.75, 0.5 in the preset's order."""
    torch.manual_seed(0)
    model = build_segmenter("small", 3).eval()
    images = torch.randn(2, 3, 40, 56)
    with torch.no_grad():
        first = model(images, upsample=False)
        others = [
            F.interpolate(
                model(
                    F.interpolate(images, scale_factor=s, mode="bilinear", align_corners=False),
                    upsample=False,
                ),
                size=first.shape[-2:],
                mode="bilinear",
                align_corners=False,
            )
            for s in (0.5, 0.75)
        ]
        fused = torch.stack([first, *others]).max(dim=0).values
        logits = F.interpolate(fused, size=(40, 56), mode="bilinear", align_corners=False)
    expected = logits.argmax(dim=1).to(torch.uint8).numpy()
    ours = predict_labels(model, images, scales=(1.0, 0.75, 0.5), fusion="logits")
    assert (ours == expected).all()
    image_fused = predict_labels(model, images, scales=(1.0, 0.75, 0.5), fusion="image")
    assert (image_fused != expected).any(), "the two fusions differ on these images"
    one_scale = predict_labels(model, images, fusion="logits")
    assert (one_scale == predict_labels(model, images)).all(), "one scale: nothing to fuse"
