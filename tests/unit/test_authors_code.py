"""The method's steps against the authors' own computations (docs/method.md §10).

Each expected value comes from the computation of the authors' published code,
NUST-Machine-Intelligence-Laboratory/I2CRC at 6d25e22, restated here in our own words with the
file and lines it is read from (their code is not copied). Paths are in their repository.
"""

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from i2crc_core.data.datasets import ClassificationDataset, ImageDataset
from i2crc_core.data.layout import VocLayout
from i2crc_core.infra.config import defaults
from i2crc_core.infra.fileio import read_image, write_label
from i2crc_core.method.losses import relation_losses
from i2crc_core.method.refine import refine_label
from i2crc_core.nets.cams import compute_cams_batch
from i2crc_core.nets.models import build_classifier
from i2crc_core.nets.training import optimizer_for


def authors_center_losses(attention, labels, saliency):
    """classification/models/vgg.py:47-61 and 99-119, for the batch's simple images (one
    class): F upsampled bilinearly to the saliency map's size; per image and channel the
    prototype sum(F M) / (sum(M) + 1e-5), then the loss sum(((F - prototype) M)^2) /
    (sum(M) + 1e-5) — the *masked difference* is squared, so the weight is M^2 — averaged
    over images and channels; the same with 1 - M for the background; the separation term
    ((bg prototype - object prototype) * y) averaged over images and channels."""
    simple = labels.sum(1) == 1
    up = F.interpolate(attention[simple], size=saliency.shape[-2:], mode="bilinear").double()
    y = labels[simple].double()

    def center_loss(mask):
        mask = mask[:, None].double()
        center = (up * mask).sum((2, 3)) / (mask.sum((2, 3)) + 1e-5)
        diff = up - center[:, :, None, None]
        loss = ((diff * mask) ** 2).sum((2, 3)) / (mask.sum((2, 3)) + 1e-5)
        return loss.mean(), center

    sal = saliency[simple, 0]
    object_loss, object_center = center_loss(sal)
    background_loss, background_center = center_loss(1 - sal)
    separation = ((background_center - object_center) * y).mean()
    return object_loss.item(), background_loss.item(), separation.item()


def soft_batch(seed=0):
    generator = torch.Generator().manual_seed(seed)
    attention = torch.randn(4, 3, 5, 6, generator=generator) * 2
    labels = torch.tensor([[1.0, 0, 0], [0, 1, 1], [0, 0, 1], [1, 0, 0]])
    saliency = torch.rand(4, 1, 20, 24, generator=generator)  # soft: M and M^2 differ
    return attention, labels, saliency


def test_cad_squared_weighting_equals_the_authors_center_loss_on_soft_saliency():
    attention, labels, saliency = soft_batch()
    expected = authors_center_losses(attention, labels, saliency)
    ours = relation_losses(attention, labels, saliency, cad_weighting="squared")
    assert [t.item() for t in ours] == pytest.approx(expected, rel=1e-5)
    # Eq. 4 as printed (weight M) is another loss on soft maps, the same CSD term.
    linear = relation_losses(attention, labels, saliency, cad_weighting="linear")
    assert linear[0].item() > ours[0].item() * 1.2 and linear[1].item() > ours[1].item() * 1.2
    assert linear[2].item() == pytest.approx(expected[2], rel=1e-5)


def test_cad_weightings_agree_on_a_binary_saliency_map():
    attention, labels, saliency = soft_batch(1)
    binary = (saliency > 0.5).float()
    linear = relation_losses(attention, labels, binary, cad_weighting="linear")
    assert [t.item() for t in linear] == pytest.approx(
        authors_center_losses(attention, labels, binary), rel=1e-5
    )


def test_fan_out_normal_head_init_has_the_authors_distribution():
    """vgg.py:68-74: every conv of the head N(0, sqrt(2 / (k_h k_w out_channels))), bias 0."""
    torch.manual_seed(0)
    head = build_classifier("vgg16", 20, head_init="fan_out_normal").head
    convs = [m for m in head if isinstance(m, torch.nn.Conv2d)]
    assert [c.kernel_size for c in convs] == [(3, 3)] * 3 + [(1, 1)]
    for conv in convs:
        expected = (2 / (conv.kernel_size[0] * conv.kernel_size[1] * conv.out_channels)) ** 0.5
        weights = conv.weight.detach()
        assert weights.mean().item() == pytest.approx(0, abs=expected * 0.05)
        assert weights.std().item() == pytest.approx(
            expected, rel=0.05 if conv.out_channels > 20 else 0.1
        )
        assert torch.count_nonzero(conv.bias) == 0
    default = build_classifier("vgg16", 20).head[-1]
    assert default.weight.std().item() < 0.2 * (2 / 20) ** 0.5, "PyTorch's init is far narrower"


def test_classifier_lr_groups_are_the_authors():
    """scripts/train.py:61-65 with models/vgg.py:82-97: parameters whose name holds 'extra'
    (the head) at 10 x lr (weights) and 20 x lr (biases), the rest at lr and 2 x lr; SGD with
    momentum 0.9 and Nesterov."""
    model = build_classifier("small", 5)
    settings = defaults()["classifier"]
    optimizer = optimizer_for(model, settings)
    lr_of = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    for name, parameter in model.named_parameters():
        head = name.startswith("head.")
        bias = name.endswith("bias")
        expected = settings["lr"] * (10 if head else 1) * (2 if bias else 1)
        assert lr_of[id(parameter)] == pytest.approx(expected), name
    assert all(g["nesterov"] and g["momentum"] == 0.9 for g in optimizer.param_groups)


class FixedAttention(torch.nn.Module):
    """A 'network' whose attention map is given: the CAM step alone is under test."""

    def __init__(self, attention):
        super().__init__()
        self.attention = attention

    def forward(self, images):
        return self.attention[: images.shape[0]]


def authors_cam(attention_map, height, width):
    """scripts/test.py:88-94 then gen_gt.py:64-65: negatives to 0, divided by (max + 1e-8),
    times 255 into uint8 (truncating), OpenCV cubic resize to the image, read back and
    stretched by its min and max."""
    att = attention_map.copy()
    att[att < 0] = 0
    att = att / (att.max() + 1e-8)
    att = np.array(att * 255, dtype=np.uint8)
    att = cv2.resize(att, (width, height), interpolation=cv2.INTER_CUBIC).astype(np.float64)
    return att / 255, (att - att.min()) / (att.max() - att.min() + 1e-8)


def test_attention_normalised_cams_are_the_authors_extraction():
    generator = torch.Generator().manual_seed(3)
    attention = torch.randn(2, 4, 8, 8, generator=generator)
    model = FixedAttention(attention)
    sizes = [(75, 100), (64, 48)]
    class_ids = [[2, 4], [1]]
    cams = compute_cams_batch(
        model, torch.zeros(2, 3, 64, 64), class_ids, normalise="attention", sizes=sizes
    )
    for image, (height, width), ids, ours in zip(attention.numpy(), sizes, class_ids, cams):
        assert ours.shape == (len(ids), height, width)
        for cam, class_id in zip(ours, ids):
            expected, _ = authors_cam(image[class_id - 1], height, width)
            # their 8-bit rounding before the cubic resize is all that differs
            assert np.abs(cam - expected).max() < 2 / 255
    # The stretch of gen_gt.py, as pseudo_labels applies it, brings the two even closer.
    ours = cams[0][0]
    _, expected_stretched = authors_cam(attention[0, 1].numpy(), 75, 100)
    stretched = (ours - ours.min()) / (ours.max() - ours.min() + 1e-8)
    assert np.abs(stretched - expected_stretched).max() < 2 / 255


def test_image_normalised_cams_divide_the_upsampled_sum():
    attention = torch.randn(1, 2, 4, 4)
    cams = compute_cams_batch(FixedAttention(attention), torch.zeros(1, 3, 32, 32), [[2]])
    upsampled = F.interpolate(attention.clamp(min=0), size=(32, 32), mode="bilinear")[0, 1]
    np.testing.assert_allclose(cams[0][0], (upsampled / upsampled.max()).numpy(), rtol=1e-6)


def jpeg_dataset(root, size_hw) -> VocLayout:
    """A VOC-layout root with one random JPEG image "a" of `size_hw`."""
    (root / "JPEGImages").mkdir()
    pixels = np.random.default_rng(0).integers(0, 256, (*size_hw, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(root / "JPEGImages" / "a.jpg")
    return VocLayout(root)


def test_warped_inputs_are_pils_bilinear_resize(tmp_path):
    """utils/LoadData.py:54-57 with utils/transforms/functional.py:200-201: the test-time image
    resized to 256 x 256 by PIL's bilinear filter (their Resize passes (size, size))."""
    layout = jpeg_dataset(tmp_path, (90, 130))
    pixels = read_image(layout.image_path("a"))
    sample = ImageDataset(layout, ["a"], input_size=32)[0]
    expected = np.asarray(Image.fromarray(pixels).resize((32, 32), Image.BILINEAR))
    colours = sample["image"] * torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    colours = (colours + torch.tensor([0.485, 0.456, 0.406])[:, None, None]) * 255
    assert sample["size"] == (90, 130)
    assert np.abs(colours.permute(1, 2, 0).numpy() - expected).max() < 1e-3


def test_classifier_training_samples_resize_and_never_flip_as_the_authors(tmp_path):
    """utils/LoadData.py:24-29 (no flip among the training transforms) and 99-107: the image by
    PIL's bilinear resize, the saliency map (image size) by nearest neighbour to 256 x 256."""
    layout = jpeg_dataset(tmp_path, (50, 70))
    pixels = read_image(layout.image_path("a"))
    (tmp_path / "maps").mkdir()
    saliency = np.random.default_rng(1).integers(0, 256, (50, 70), dtype=np.uint8)
    Image.fromarray(saliency).save(tmp_path / "maps" / "a.png")
    dataset = ClassificationDataset(
        layout,
        ["a"],
        {"a": (1,)},
        2,
        tmp_path / "maps",
        32,
        train=True,
        color_jitter=(0.0, 0.0, 0.0, 0.0),
        flip=False,
    )
    expected_saliency = cv2.resize(saliency / 255.0, (32, 32), interpolation=cv2.INTER_NEAREST)
    expected_image = np.asarray(Image.fromarray(pixels).resize((32, 32), Image.BILINEAR))
    for draw in range(20):
        torch.manual_seed(draw)
        sample = dataset[0]
        assert not sample["flip"]
        assert np.array_equal(sample["image"].permute(1, 2, 0).numpy(), expected_image)
        np.testing.assert_allclose(sample["saliency"][0].numpy(), expected_saliency, atol=1e-6)


def authors_refinement(prediction, initial, classes):
    """classification/label_refinement.py:50-95 with 1-based classes: predicted classes not
    in the image label become 255; if the label holds two or more classes, predicted
    background where the initial label is not 0 takes the initial label (255 included); if a
    class of the label is then absent, all background becomes 255; under 1 % object pixels,
    the whole image becomes 255."""
    gt = prediction.astype(np.int32).copy()
    for value in set(np.unique(gt).tolist()) - {0, *classes}:
        gt[gt == value] = 255
    if len(classes) > 1:
        gt = np.where((gt == 0) & (initial != 0), initial, gt)
    if any((gt == c).sum() == 0 for c in classes):
        gt[gt == 0] = 255
    if ((gt > 0) & (gt < 255)).sum() / gt.size < 0.01:
        gt[...] = 255
    return gt


@pytest.mark.parametrize("seed", range(40))
def test_multi_class_only_refinement_is_the_authors(seed):
    rng = np.random.default_rng(seed)
    classes = sorted(rng.choice(np.arange(1, 6), size=rng.integers(1, 4), replace=False).tolist())
    shape = (rng.integers(4, 12), rng.integers(4, 12))
    prediction = rng.choice([0, 1, 2, 3, 4, 5], size=shape).astype(np.uint8)
    initial = rng.choice([0, 255, *classes], size=shape).astype(np.uint8)
    ours = refine_label(prediction, initial, classes, **defaults()["refinement"])
    assert defaults()["refinement"]["multi_class_only"]
    assert np.array_equal(ours, authors_refinement(prediction, initial, classes))


def test_label_files_round_trip_for_the_refinement_inputs(tmp_path):
    """The refinement reads palette PNGs as the authors' np.asarray(Image.open(...)) does."""
    label = np.array([[0, 3, 255]], np.uint8)
    write_label(tmp_path / "x.png", label)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "x.png")), label)
