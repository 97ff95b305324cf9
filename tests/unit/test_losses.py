"""Eq. 1 and Eq. 3-8 against values computed by hand on tiny tensors."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from i2crc_core.method.losses import (
    ATTENTION_STATS,
    LOSS_PARTS,
    attention_stats,
    classification_loss,
    msc_segmentation_loss,
    relation_losses,
    resized_labels,
    segmentation_loss,
    simple_images,
    total_loss,
    upsample,
)
from i2crc_core.nets.models import build_segmenter

LAMBDAS = {"lambda_ob": 0.01, "lambda_bg": 0.025, "lambda_csd": 0.1}


def two_pixel_case():
    """One simple image (class 1 of 2), two pixels, saliency 0.75 / 0.25.

    F_1 = [4, 0], F_2 = [0, 0]. By hand: p = [3, 0], p̄ = [1, 0];
    L_cad_ob = (0.75 * ((4-3)^2 + 0)/2 + 0.25 * ((0-3)^2 + 0)/2) / 1 = 1.5;
    L_cad_bg = (0.25 * ((4-1)^2)/2 + 0.75 * ((0-1)^2)/2) / 1 = 1.5;
    L_csd = mean_c(y (p̄ - p)) = (1 - 3) / 2 = -1.
    """
    attention = torch.tensor([[[[4.0, 0.0]], [[0.0, 0.0]]]])
    labels = torch.tensor([[1.0, 0.0]])
    saliency = torch.tensor([[[[0.75, 0.25]]]])
    return attention, labels, saliency


def test_relation_losses_match_hand_computed_values():
    cad_ob, cad_bg, csd = relation_losses(*two_pixel_case())
    assert cad_ob.item() == pytest.approx(1.5, rel=1e-4)
    assert cad_bg.item() == pytest.approx(1.5, rel=1e-4)
    assert csd.item() == pytest.approx(-1.0, rel=1e-4)


def test_uniform_attention_inside_a_region_has_zero_aggregation_distance():
    attention = torch.tensor([[[[2.0, 2.0, 7.0]]]])
    saliency = torch.tensor([[[[1.0, 1.0, 0.0]]]])
    cad_ob, cad_bg, csd = relation_losses(attention, torch.tensor([[1.0]]), saliency)
    assert cad_ob.item() == pytest.approx(0.0, abs=1e-6)
    assert cad_bg.item() == pytest.approx(0.0, abs=1e-6)
    assert csd.item() == pytest.approx(7.0 - 2.0, rel=1e-4)


def test_complex_images_do_not_contribute():
    attention, labels, saliency = two_pixel_case()
    complex_attention = torch.full((1, 2, 1, 2), 50.0)
    complex_attention[0, 0, 0, 0] = -80.0
    batch = (
        torch.cat([attention, complex_attention]),
        torch.cat([labels, torch.tensor([[1.0, 1.0]])]),
        torch.cat([saliency, torch.tensor([[[[0.1, 0.9]]]])]),
    )
    assert [term.item() for term in relation_losses(*batch)] == pytest.approx(
        [term.item() for term in relation_losses(*two_pixel_case())]
    )


def test_simple_images_are_those_with_exactly_one_class():
    labels = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    assert simple_images(labels).tolist() == [1.0, 0.0, 1.0, 0.0]


def test_attention_is_upsampled_to_the_saliency_size():
    attention = torch.tensor([[[[4.0]]]])
    saliency = torch.tensor([[[[1.0, 1.0], [0.0, 0.0]]]])
    cad_ob, cad_bg, csd = relation_losses(attention, torch.tensor([[1.0]]), saliency)
    assert csd.item() == pytest.approx(0.0, abs=1e-4)
    assert cad_ob.item() == pytest.approx(0.0, abs=1e-6)


def test_classification_loss_is_the_soft_margin_loss_of_the_average():
    attention = torch.tensor([[[[1.0, 3.0]], [[-2.0, 0.0]]]])
    labels = torch.tensor([[1.0, 0.0]])
    q1, q2 = 2.0, -1.0
    expected = (math.log1p(math.exp(-q1)) + math.log1p(math.exp(q2))) / 2
    assert classification_loss(attention, labels).item() == pytest.approx(expected, rel=1e-5)


def test_total_loss_weights_the_terms_as_eq_8():
    attention, labels, saliency = two_pixel_case()
    loss, part_values = total_loss(attention, labels, saliency, **LAMBDAS)
    parts = dict(zip(LOSS_PARTS, part_values.tolist()))
    expected = parts["cls"] + 0.01 * 1.5 + 0.025 * 1.5 + 0.1 * -1.0
    assert loss.item() == pytest.approx(expected, rel=1e-4)
    assert parts["total"] == pytest.approx(loss.item())
    assert parts["cad_ob"] == pytest.approx(1.5, rel=1e-4)


def test_batch_without_simple_images_gives_zero_terms_that_backpropagate():
    attention = torch.randn(2, 3, 4, 4, requires_grad=True)
    labels = torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]])
    saliency = torch.rand(2, 1, 8, 8)
    terms = relation_losses(attention, labels, saliency)
    for term in terms:
        assert isinstance(term, torch.Tensor) and term.requires_grad and term.item() == 0.0
    loss, _ = total_loss(attention, labels, saliency, **LAMBDAS)
    loss.backward()
    only_cls = attention.detach().clone().requires_grad_()
    classification_loss(only_cls, labels).backward()
    assert torch.allclose(attention.grad, only_cls.grad)


def test_relation_terms_send_gradient_to_the_attention_map():
    torch.manual_seed(0)
    attention = torch.randn(3, 2, 4, 4)
    labels = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    saliency = torch.rand(3, 1, 8, 8)
    gradients = {}
    for name, lambdas in {"plain": dict.fromkeys(LAMBDAS, 0.0), "i2crc": LAMBDAS}.items():
        leaf = attention.clone().requires_grad_()
        total_loss(leaf, labels, saliency, **lambdas)[0].backward()
        gradients[name] = leaf.grad
    assert torch.isfinite(gradients["i2crc"]).all()
    difference = (gradients["i2crc"] - gradients["plain"]).abs()
    assert difference[:2].sum() > 0, "simple images get gradient from the constraints"
    assert difference[2].sum() == 0, "the complex image gets none"


def test_losses_are_float32_under_half_precision_attention():
    attention, labels, saliency = two_pixel_case()
    loss, parts = total_loss(attention.bfloat16(), labels, saliency, **LAMBDAS)
    assert loss.dtype == torch.float32 and parts.dtype == torch.float32
    assert parts[LOSS_PARTS.index("cad_ob")].item() == pytest.approx(1.5, rel=1e-2)


def three_image_case():
    """Two pixels per image, classes 1-2 labelled, class 3 never (its F of 100 must not count).

    image 0: two_pixel_case (class 1, M = [0.75, 0.25]): in mean p_1 = 3, out mean p̄_1 = 1;
             M >= 0.5 only at pixel 0: in max 4, out max 0.
    image 1: classes 1 and 2, F_1 = [2, -2], F_2 = [6, 0], M = [1, 0]: in mean (2 + 6) / 2 = 4,
             out mean (-2 + 0) / 2 = -1, in max 6, out max 0.
    image 2: class 2, F_2 = [8, -4], M = [0.4, 0]: in mean 8 (soft weight 0.4),
             out mean (0.6·8 + 1·(-4)) / 1.6 = 0.5; no pixel has M >= 0.5: in max undefined,
             out max 8.
    """
    attention = torch.tensor(
        [
            [[4.0, 0.0], [0.0, 0.0], [100.0, 100.0]],
            [[2.0, -2.0], [6.0, 0.0], [100.0, 100.0]],
            [[0.0, 0.0], [8.0, -4.0], [100.0, 100.0]],
        ]
    )[:, :, None, :]
    labels = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 1.0, 0.0]])
    saliency = torch.tensor([[0.75, 0.25], [1.0, 0.0], [0.4, 0.0]])[:, None, None, :]
    return attention, labels, saliency


def test_attention_stats_match_hand_computed_values():
    sums, counts = attention_stats(*three_image_case())
    assert dict(zip(ATTENTION_STATS, counts.tolist())) == {
        "att_in_mean": 3,
        "att_out_mean": 3,
        "att_in_max": 2,
        "att_out_max": 3,
    }
    expected = {
        "att_in_mean": 3 + 4 + 8,
        "att_out_mean": 1 - 1 + 0.5,
        "att_in_max": 4 + 6,
        "att_out_max": 0 + 0 + 8,
    }
    assert dict(zip(ATTENTION_STATS, sums.tolist())) == pytest.approx(expected, rel=1e-4)
    # image 0 alone: the inside and outside means are the prototypes p_1, p̄_1 behind L_csd
    single = [tensor[:1] for tensor in three_image_case()]
    assert attention_stats(*single)[0].tolist() == pytest.approx([3.0, 1.0, 4.0, 0.0], rel=1e-4)


def test_attention_stats_upsample_f_and_count_no_image_without_a_class():
    attention = torch.tensor([[[[4.0]]], [[[9.0]]]])
    labels = torch.tensor([[1.0], [0.0]])
    saliency = torch.tensor([[[[1.0, 0.0]]], [[[1.0, 0.0]]]])
    sums, counts = attention_stats(attention, labels, saliency)
    assert sums.tolist() == pytest.approx([4.0] * 4, rel=1e-4) and counts.tolist() == [1] * 4


def test_attention_stats_of_a_low_resolution_map_are_those_of_its_upsampled_map():
    torch.manual_seed(0)
    attention = torch.randn(4, 3, 3, 3)
    labels = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 1.0, 1.0], [1.0, 1.0, 1.0]])
    saliency = torch.rand(4, 1, 12, 12)
    low = attention_stats(attention, labels, saliency)
    high = attention_stats(upsample(attention, saliency), labels, saliency)
    assert torch.allclose(low, high, atol=1e-5), "the class mean is taken before upsampling"


def test_attention_stats_are_detached_draw_nothing_and_leave_the_losses_alone():
    torch.manual_seed(0)
    attention = torch.randn(3, 2, 4, 4, requires_grad=True)
    labels = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    saliency = torch.rand(3, 1, 8, 8)
    loss, parts = total_loss(attention, labels, saliency, **LAMBDAS)
    rng = torch.get_rng_state()
    stats = attention_stats(attention, labels, saliency)
    assert not stats.requires_grad and stats.shape == (2, 4)
    assert attention_stats(attention.bfloat16(), labels, saliency).dtype == torch.float32
    assert torch.equal(torch.get_rng_state(), rng), "no random draw"
    loss.backward()
    without = attention.detach().clone().requires_grad_()
    loss_without, parts_without = total_loss(without, labels, saliency, **LAMBDAS)
    loss_without.backward()
    assert torch.equal(parts, parts_without) and torch.equal(attention.grad, without.grad)


def test_segmentation_loss_averages_over_labelled_pixels_only():
    logits = torch.zeros(1, 3, 1, 3)
    target = torch.tensor([[[0, 255, 2]]])
    assert segmentation_loss(logits, target, 255).item() == pytest.approx(math.log(3))


def test_segmentation_loss_of_a_fully_ignored_batch_is_zero_not_nan():
    logits = torch.randn(2, 3, 4, 4, requires_grad=True)
    loss = segmentation_loss(logits, torch.full((2, 4, 4), 255), 255)
    assert loss.item() == 0.0
    loss.backward()
    assert torch.count_nonzero(logits.grad) == 0


def _their_resized_labels(labels: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The ref code's label resizing, transcribed (segmentation/main.py:63-76): each label map
    as a float32 PIL image, resized with PIL's NEAREST, stacked as int64. (It passes (H, W)
    where PIL wants (W, H); its crops are square, where the two agree. Here the size is given
    the right way round, to test non-square sizes too.)"""
    return torch.from_numpy(
        np.stack(
            [
                np.asarray(
                    Image.fromarray(label.float().numpy()).resize(
                        (width, height), resample=Image.NEAREST
                    )
                )
                for label in labels
            ]
        )
    ).long()


def _label_map(side: int, seed=0) -> torch.Tensor:
    """Two side x side maps of 3 x 2-pixel blocks with values 0-3 and 255 (ignore)."""
    generator = torch.Generator().manual_seed(seed)
    values = torch.tensor([0, 1, 2, 3, 255])
    blocks = values[torch.randint(5, (2, side // 2 + 1, side // 3 + 1), generator=generator)]
    return blocks.repeat_interleave(3, dim=-1).repeat_interleave(2, dim=-2)[:, :side, :side]


@pytest.mark.parametrize("size", [(41, 41), (20, 20), (30, 30), (13, 29), (400, 200)])
def test_label_resizing_is_pils_nearest_on_the_ref_codes_321_pixel_crops(size):
    """The ref code's crops are 321 pixels; its MSC logits are 41, 20 and 30 wide."""
    labels = _label_map(321)
    ours = resized_labels(labels, size)
    assert ours.dtype == labels.dtype and ours.shape == (2, *size)
    assert torch.equal(ours, _their_resized_labels(labels, *size))
    plain = F.interpolate(labels[:, None].float(), size=size, mode="nearest")[:, 0].long()
    assert not torch.equal(plain, ours), "torch's 'nearest' would shift the labels"
    assert resized_labels(labels, (321, 321)) is labels


def test_label_resizing_is_pils_nearest_from_odd_sizes_and_differs_only_at_ties():
    """Every output width from odd input widths is PIL's; from even ones the two may differ only
    at a half-pixel tie, an output pixel whose centre maps exactly onto an input pixel boundary,
    which PIL's and torch's floating-point rounding settle either way (64 to 6: pixel 4)."""
    for width in (321, 65):
        row = torch.arange(width)[None, None].expand(1, 2, width)
        for out in range(1, width + 1):
            mine = resized_labels(row, (2, out))
            assert torch.equal(mine, _their_resized_labels(row, 2, out)), (width, out)
    row = torch.arange(64)[None, None].expand(1, 2, 64)
    differing = set()
    for out in range(1, 65):
        mine, theirs = resized_labels(row, (2, out))[0, 0], _their_resized_labels(row, 2, out)[0, 0]
        for pixel in torch.nonzero(mine != theirs).flatten().tolist():
            assert ((2 * pixel + 1) * 64) % (2 * out) == 0, (out, pixel)
            differing.add((out, pixel))
    assert (6, 4) in differing


def _their_msc_loss(logits, labels) -> torch.Tensor:
    """The ref code's training loss, transcribed (segmentation/main.py:144, 199-204): for each
    of the MSC outputs, cross-entropy (ignore 255, mean over the labelled pixels) against the
    labels resized to that output's size; the sum of them."""
    criterion = torch.nn.CrossEntropyLoss(ignore_index=255)
    total = 0
    for each in logits:
        total = total + criterion(each, _their_resized_labels(labels, *each.shape[-2:]))
    return total


def test_msc_loss_is_the_ref_codes_on_fixed_logits():
    generator = torch.Generator().manual_seed(1)
    labels = _label_map(65)
    logits = [torch.randn(2, 4, side, side, generator=generator) for side in (9, 5, 7, 9)]
    ours = msc_segmentation_loss(logits, labels, 255)
    torch.testing.assert_close(ours, _their_msc_loss(logits, labels), rtol=1e-6, atol=0)
    single = segmentation_loss(logits[0], resized_labels(labels, (9, 9)), 255)
    assert ours > 2 * single, "a sum over the four maps, not one"


def test_msc_loss_of_a_segmenter_is_the_ref_codes_and_backpropagates_through_every_scale():
    torch.manual_seed(0)
    model = build_segmenter("small", 3).eval()
    images = torch.randn(2, 3, 64, 64)
    labels = _label_map(64, seed=2)
    ours = msc_segmentation_loss(model.msc_logits(images, [0.5, 0.75]), labels, 255)
    with torch.no_grad():
        base = model(images, upsample=False)
        half, three_quarters = (
            model(
                F.interpolate(images, scale_factor=scale, mode="bilinear", align_corners=False),
                upsample=False,
            )
            for scale in (0.5, 0.75)
        )
        resized = [
            F.interpolate(each, size=(8, 8), mode="bilinear", align_corners=False)
            for each in (half, three_quarters)
        ]
        maximum = torch.stack([base, *resized]).max(dim=0).values
        theirs = _their_msc_loss([base, half, three_quarters, maximum], labels)
    torch.testing.assert_close(ours.detach(), theirs, rtol=1e-5, atol=0)
    ours.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.head.parameters())
