"""Eq. 2 and multi-scale / flip CAM inference."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from i2crc_core.nets.cams import compute_cams_batch, fused_activation, normalise_cams
from i2crc_core.nets.models import build_classifier


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_classifier("small", 4).eval()


def test_normalise_cams_is_relu_over_max():
    activation = torch.tensor([[[-1.0, 2.0], [4.0, 1.0]], [[0.0, 0.0], [-3.0, 0.0]]])
    cams = normalise_cams(activation)
    assert cams[0].tolist() == [[0.0, 0.5], [1.0, 0.25]]
    assert cams[1].tolist() == [[0.0, 0.0], [0.0, 0.0]], "an all-negative map stays zero, no NaN"


def test_cams_are_per_present_class_at_image_resolution(model):
    images = torch.randn(2, 3, 40, 48)
    cams = compute_cams_batch(model, images, [[3], [4, 1]])
    assert [c.shape for c in cams] == [(1, 40, 48), (2, 40, 48)]
    assert all(c.dtype == np.float32 and c.min() >= 0 and c.max() <= 1 for c in cams)
    activation = fused_activation(model, images)
    expected = normalise_cams(activation[1, [3, 0]]).numpy()
    np.testing.assert_allclose(cams[1], expected)


def test_batched_cams_equal_one_image_at_a_time(model):
    images = torch.randn(3, 3, 32, 32)
    batched = compute_cams_batch(model, images, [[1], [2], [3, 4]])
    single = [
        compute_cams_batch(model, images[i][None], [ids])[0]
        for i, ids in enumerate([[1], [2], [3, 4]])
    ]
    for a, b in zip(batched, single):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_flip_adds_the_unflipped_activation_of_the_mirrored_image(model):
    images = torch.randn(2, 3, 32, 40)
    fused = fused_activation(model, images, flip=True)
    expected = fused_activation(model, images) + fused_activation(model, images.flip(-1)).flip(-1)
    torch.testing.assert_close(fused, expected, atol=1e-5, rtol=1e-5)


def test_scales_are_summed_at_image_size(model):
    images = torch.randn(1, 3, 32, 32)
    fused = fused_activation(model, images, scales=(1.0, 0.5))
    half = F.interpolate(images, scale_factor=0.5, mode="bilinear", align_corners=False)
    half_activation = F.interpolate(
        model(half).clamp(min=0), size=(32, 32), mode="bilinear", align_corners=False
    )
    torch.testing.assert_close(
        fused, fused_activation(model, images) + half_activation, atol=1e-5, rtol=1e-5
    )


def test_batched_cams_equal_each_images_own_maps_in_its_class_order():
    """compute_cams_batch gathers every image's maps at once (one host copy): the same arrays
    as normalising each image's fused activation for its classes, in the order given."""
    torch.manual_seed(0)
    model = build_classifier("small", 4).eval()
    images = torch.randn(3, 3, 40, 48)
    class_ids = [[2], [4, 1], [1, 2, 3]]
    cams = compute_cams_batch(model, images, class_ids, scales=(1.0, 0.5), flip=True)
    activation = fused_activation(model, images, scales=(1.0, 0.5), flip=True)
    assert [c.shape for c in cams] == [(1, 40, 48), (2, 40, 48), (3, 40, 48)]
    for maps, image_activation, ids in zip(cams, activation, class_ids):
        expected = normalise_cams(image_activation[[c - 1 for c in ids]]).numpy()
        assert maps.dtype == np.float32 and np.array_equal(maps, expected)
