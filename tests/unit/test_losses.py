"""Eq. 1 and Eq. 3-8 against values computed by hand on tiny tensors."""

import math

import pytest
import torch

from i2crc_core.losses import (
    LOSS_PARTS,
    classification_loss,
    relation_losses,
    segmentation_loss,
    simple_images,
    total_loss,
)

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
