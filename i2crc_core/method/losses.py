"""Classification loss (Eq. 1) and the saliency guided relation constraints (Eq. 3-8).

The constraints use only *simple* images (exactly one object class). Saliency M is used
soft, in [0, 1], and every channel of the attention map F takes part (ref code). L_csd averages
y·(p̄ − p) over the C channels, as the ref code does: 1/C of Eq. 7's dot product, so λ_csd acts
as λ_csd / C (docs/method.md §3). CAD weights each pixel's squared distance by M as Eq. 4 prints
it (`cad_weighting="linear"`) or by M², as the authors' code does by squaring the masked
difference (`"squared"`); both divide by Σ M. All terms are computed in float32 whatever the
autocast dtype of F. `attention_stats` measures F inside and outside the saliency, logged beside
the losses (docs/pipeline.md §"Watching training").
"""

import torch
import torch.nn.functional as F

EPS = 1e-5


def classification_loss(attention: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Eq. 1: multi-label soft margin loss on the global average of the attention map."""
    return F.multilabel_soft_margin_loss(attention.float().mean(dim=(2, 3)), labels.float())


def simple_images(labels: torch.Tensor) -> torch.Tensor:
    """Float 0/1 (N,): 1 for images whose label has exactly one object class.

    A weight rather than a boolean index: selecting rows by a mask needs the count on the
    host, a GPU-to-CPU synchronisation in every training step.
    """
    return (labels.sum(dim=1) == 1).float()


def prototypes(attention: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Eq. 3 / Eq. 5: weight-averaged attention per image and channel, (N, C)."""
    return (weight * attention).sum(dim=(2, 3)) / (weight.sum(dim=(2, 3)) + EPS)


CAD_WEIGHTINGS = ("linear", "squared")


def aggregation_distance(attention, weight, prototype, cad_weighting: str) -> torch.Tensor:
    """Eq. 4 / Eq. 6 per image, (N,): Σ_ij w_ij · mean_c (F_c,ij - p_c)² / Σ_ij M_ij, with
    w = M ("linear", the paper) or M² ("squared", the authors' code), M the weight map."""
    if cad_weighting not in CAD_WEIGHTINGS:
        raise ValueError(f"cad_weighting {cad_weighting!r} is not one of {CAD_WEIGHTINGS}")
    squared = (attention - prototype[:, :, None, None]).pow(2).mean(dim=1, keepdim=True)
    pixel_weight = weight.square() if cad_weighting == "squared" else weight
    return (pixel_weight * squared).sum(dim=(1, 2, 3)) / (weight.sum(dim=(1, 2, 3)) + EPS)


def upsample(attention: torch.Tensor, saliency: torch.Tensor) -> torch.Tensor:
    """The attention map at the saliency map's size, where the constraints are computed."""
    return F.interpolate(attention, size=saliency.shape[-2:], mode="bilinear", align_corners=False)


def relation_losses(
    attention: torch.Tensor,
    labels: torch.Tensor,
    saliency: torch.Tensor,
    cad_weighting: str = "linear",
):
    """(L_cad_ob, L_cad_bg, L_csd), each the mean over the simple images of a batch.

    attention (N, C, h, w), labels (N, C) multi-hot, saliency (N, 1, H, W) in [0, 1].
    Every image is computed and the simple ones are averaged by their 0/1 weight; a batch
    without simple images gives zeros that are still part of the graph.
    """
    simple = simple_images(labels)
    count = simple.sum().clamp(min=1.0)
    attention = upsample(attention.float(), saliency)
    salient = saliency.float()
    background = 1.0 - salient
    object_prototype = prototypes(attention, salient)
    background_prototype = prototypes(attention, background)
    cad_object = (
        simple * aggregation_distance(attention, salient, object_prototype, cad_weighting)
    ).sum() / count
    cad_background = (
        simple * aggregation_distance(attention, background, background_prototype, cad_weighting)
    ).sum() / count
    separation = (labels.float() * (background_prototype - object_prototype)).mean(dim=1)
    csd = (simple * separation).sum() / count
    return cad_object, cad_background, csd


LOSS_PARTS = ("total", "cls", "cad_ob", "cad_bg", "csd")


def total_loss(
    attention,
    labels,
    saliency,
    *,
    lambda_ob: float,
    lambda_bg: float,
    lambda_csd: float,
    cad_weighting: str = "linear",
):
    """Eq. 8. Returns the loss and its parts (LOSS_PARTS) as one detached tensor, left on
    the device so that logging them costs no synchronisation per step. `cad_weighting`: see
    `aggregation_distance` (the config key `losses.cad_weighting`)."""
    cls = classification_loss(attention, labels)
    cad_object, cad_background, csd = relation_losses(attention, labels, saliency, cad_weighting)
    loss = cls + lambda_ob * cad_object + lambda_bg * cad_background + lambda_csd * csd
    return loss, torch.stack([loss, cls, cad_object, cad_background, csd]).detach()


ATTENTION_STATS = ("att_in_mean", "att_out_mean", "att_in_max", "att_out_max")


def attention_stats(attention, labels, saliency) -> torch.Tensor:
    """What the constraints do to the attention map F, per image over its own classes (the
    channels of its label), inside and outside the saliency: (2, 4) float32, row 0 the sums
    over the batch's images of ATTENTION_STATS, row 1 the number of images each is defined for
    (the caller divides after summing over an epoch, so that it is a mean over images).

    F is upsampled to the saliency size as in relation_losses. Means: M used soft as weights,
    i.e. the prototypes of Eq. 3 / Eq. 5 averaged over the image's classes (defined when the
    weights are not all 0). Maxima: the image's largest value of those channels over the
    pixels with M >= 0.5 (inside) or M < 0.5 (outside) (defined when there is such a pixel).
    An image without a class defines nothing. Computed without gradient and without random
    draws, so reading it changes neither the losses nor the training; it stays on the device.
    """
    with torch.no_grad():
        attention = attention.float()
        own = labels.float()
        classes = own.sum(dim=1)
        # Bilinear upsampling is linear, so the mean over the image's classes is taken first:
        # one channel to upsample and weight instead of C. A maximum does not commute with it.
        class_mean = torch.einsum("nc,nchw->nhw", own, attention)[:, None]
        class_mean = upsample(class_mean / classes.clamp(min=1)[:, None, None, None], saliency)
        is_own = own[:, :, None, None] > 0
        class_max = torch.where(is_own, upsample(attention, saliency), -torch.inf).amax(
            dim=1, keepdim=True
        )
        salient = saliency.float()
        inside = salient >= 0.5
        means, maxima, defined_means, defined_maxima = [], [], [], []
        for weight, region in ((salient, inside), (1.0 - salient, ~inside)):
            means.append(prototypes(class_mean, weight)[:, 0])
            defined_means.append((classes > 0) & (weight.sum(dim=(1, 2, 3)) > 0))
            maxima.append(torch.where(region, class_max, -torch.inf).amax(dim=(1, 2, 3)))
            defined_maxima.append((classes > 0) & region.any(dim=(1, 2, 3)))
        values = torch.stack(means + maxima)
        defined = torch.stack(defined_means + defined_maxima)
        # where, not a product: an undefined maximum is -inf, and 0 * -inf is NaN
        sums = torch.where(defined, values, 0.0).sum(dim=1)
        return torch.stack([sums, defined.sum(dim=1).float()])


def segmentation_loss(
    logits: torch.Tensor, target: torch.Tensor, ignore_index: int
) -> torch.Tensor:
    """Cross-entropy over the labelled pixels. A batch with none gives a zero that still
    backpropagates, where the mean of an empty set would be NaN."""
    summed = F.cross_entropy(logits.float(), target, ignore_index=ignore_index, reduction="sum")
    return summed / (target != ignore_index).sum().clamp(min=1)


def resized_labels(target: torch.Tensor, size) -> torch.Tensor:
    """Label maps (N, H, W) resized to `size` by the nearest pixel centre, torch's
    "nearest-exact": PIL's NEAREST, with which the ref code resizes its labels
    (segmentation/main.py, resize_labels), but on the device (torch's "nearest" and OpenCV's
    INTER_NEAREST shift the labels by up to a pixel). The two agree exactly from an odd size,
    such as the ref code's 321-pixel crops; from an even one they may differ at a half-pixel
    tie, an output centre that falls exactly on an input pixel boundary, which PIL's and
    torch's floating-point rounding settle either way. Unchanged at their own size."""
    if target.shape[-2:] == tuple(size):
        return target
    resized = F.interpolate(target[:, None].float(), size=tuple(size), mode="nearest-exact")
    return resized[:, 0].to(target.dtype)


def msc_segmentation_loss(logits, target: torch.Tensor, ignore_index: int) -> torch.Tensor:
    """The ref code's multi-scale training loss (segmentation/main.py, train): the sum over
    the logit maps of models.Segmenter.msc_logits of `segmentation_loss` against the labels
    resized to each map's (feature) resolution; the logits are not upsampled."""
    return sum(
        segmentation_loss(each, resized_labels(target, each.shape[-2:]), ignore_index)
        for each in logits
    )
