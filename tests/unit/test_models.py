"""Model construction, output strides, weight loading and architecture ids."""

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.models import resnet101, vgg16

from i2crc_core.data.datasets import normalize
from i2crc_core.infra.errors import CheckpointError, ConfigError
from i2crc_core.infra.fileio import read_image
from i2crc_core.nets.checkpoints import save_backbone
from i2crc_core.nets.models import (
    architecture_id,
    build_classifier,
    build_from_architecture_id,
    build_segmenter,
    caffe_bgr,
)


@pytest.mark.parametrize("backbone", ["small", "vgg16"])
def test_classifier_attention_map_has_output_stride_8(backbone):
    model = build_classifier(backbone, 5).eval()
    with torch.no_grad():
        attention = model(torch.zeros(2, 3, 64, 96))
    assert attention.shape == (2, 5, 8, 12)


def test_vgg_classifier_has_the_spec_layers():
    model = build_classifier("vgg16", 20)
    pools = [m for m in model.backbone if isinstance(m, torch.nn.MaxPool2d)]
    assert len(pools) == 4 and pools[-1].stride == 1 and pools[-1].kernel_size == 3
    convs = [m for m in model.backbone if isinstance(m, torch.nn.Conv2d)]
    assert [c.dilation for c in convs[-3:]] == [(2, 2)] * 3
    head = [m for m in model.head if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size) for c in head] == [(512, (3, 3))] * 3 + [(20, (1, 1))]


@pytest.mark.parametrize(
    ("backbone", "rates"),
    [("small", (1, 2, 4, 6)), ("vgg16", (6, 12, 18, 24)), ("resnet101", (6, 12, 18, 24))],
)
def test_segmenter_returns_logits_at_input_size_with_deeplab_aspp(backbone, rates):
    model = build_segmenter(backbone, 3).eval()
    assert tuple(branch.dilation[0] for branch in model.head.branches) == rates
    with torch.no_grad():
        logits = model(torch.zeros(1, 3, 40, 56))
    assert logits.shape == (1, 4, 40, 56)


def test_aspp_is_a_sum_of_branches():
    model = build_segmenter("small", 2, aspp_rates=[1, 3]).eval()
    features = torch.randn(1, model.backbone.out_channels, 5, 5)
    expected = model.head.branches[0](features) + model.head.branches[1](features)
    assert torch.allclose(model.head(features), expected)


def test_param_groups_cover_every_parameter_once_with_ref_code_multipliers():
    model = build_classifier("small", 4)
    groups = model.param_groups(0.001, head=10, bias=2)
    grouped = [id(p) for group in groups for p in group["params"]]
    assert sorted(grouped) == sorted(id(p) for p in model.parameters())
    head_bias = model.head[-1].bias
    lr_of = {id(p): group["lr"] for group in groups for p in group["params"]}
    assert lr_of[id(head_bias)] == pytest.approx(0.02)
    assert lr_of[id(model.head[-1].weight)] == pytest.approx(0.01)
    assert lr_of[id(next(model.backbone.parameters()))] == pytest.approx(0.001)


@pytest.mark.parametrize(
    "builder",
    [
        lambda: build_classifier("small", 7),
        lambda: build_segmenter("small", 7, aspp_rates=[2, 5]),
        lambda: build_segmenter("small", 7, input_normalisation="caffe_bgr"),
    ],
)
def test_architecture_id_round_trip(builder):
    model = builder()
    rebuilt = build_from_architecture_id(architecture_id(model))
    assert type(rebuilt) is type(model)
    assert architecture_id(rebuilt) == architecture_id(model)
    rebuilt.load_state_dict(model.state_dict())


def test_unknown_architecture_is_a_checkpoint_error():
    with pytest.raises(CheckpointError, match="unknown model architecture 'segmenter/nope'"):
        build_from_architecture_id("segmenter/nope")
    with pytest.raises(CheckpointError, match="unknown model architecture"):
        build_from_architecture_id("segmenter/small/classes=3/aspp=1-2/input=bgr")


def test_the_input_convention_is_in_the_architecture_id_and_old_ids_mean_imagenet():
    """Ids written before the option existed name no convention: they stay valid, ImageNet."""
    old = "segmenter/small/classes=3/aspp=1-2-4-6"
    assert build_from_architecture_id(old).input_normalisation == "imagenet"
    assert architecture_id(build_segmenter("small", 3)) == old
    caffe = architecture_id(build_segmenter("small", 3, input_normalisation="caffe_bgr"))
    assert caffe == old + "/input=caffe_bgr"
    assert build_from_architecture_id(caffe).input_normalisation == "caffe_bgr"
    with pytest.raises(ConfigError, match="'segmentation.input_normalisation': 'rgb'"):
        build_segmenter("small", 3, input_normalisation="rgb")


def test_caffe_bgr_is_the_ref_codes_input_on_a_real_image(tmp_path):
    """The ref code reads an image with OpenCV (BGR), as float32, and subtracts the Caffe
    mean, B, G, R = 104.008, 116.669, 122.675, with no division (libs/datasets/voc.py:83,
    libs/datasets/base.py:106-110, configs/voc12.yaml IMAGE.MEAN). Every 8-bit level of each
    channel occurs in the image."""
    levels = np.arange(256, dtype=np.uint8)
    image = np.stack([levels[None, :].repeat(6, 0), levels[::-1][None, :].repeat(6, 0)], -1)
    image = np.concatenate([image, np.roll(levels, 77)[None, :, None].repeat(6, 0)], -1)
    path = tmp_path / "image.png"
    Image.fromarray(image).save(path)
    theirs = cv2.imread(str(path), cv2.IMREAD_COLOR).astype(np.float32)
    theirs -= np.array([104.008, 116.669, 122.675])
    theirs = torch.from_numpy(theirs.transpose(2, 0, 1).astype(np.float32))
    ours = caffe_bgr(normalize(read_image(path))[None])[0]
    assert ours.dtype == torch.float32
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=0)


def test_a_caffe_bgr_segmenter_converts_its_input_before_the_backbone():
    torch.manual_seed(0)
    caffe = build_segmenter("small", 3, input_normalisation="caffe_bgr").eval()
    plain = build_segmenter("small", 3).eval()
    plain.load_state_dict(caffe.state_dict())
    images = normalize(torch.randint(0, 256, (2, 3, 24, 32), dtype=torch.uint8))
    with torch.no_grad():
        torch.testing.assert_close(caffe(images), plain(caffe_bgr(images)), rtol=0, atol=0)
        assert not torch.allclose(caffe(images), plain(images))


def test_segmenter_logits_at_feature_resolution_are_those_it_upsamples():
    model = build_segmenter("small", 3).eval()
    images = torch.randn(1, 3, 40, 56)
    with torch.no_grad():
        small = model(images, upsample=False)
        assert small.shape == (1, 4, 5, 7)
        expected = F.interpolate(small, size=(40, 56), mode="bilinear", align_corners=False)
        torch.testing.assert_close(model(images), expected, rtol=0, atol=0)


def _their_msc_outputs(base, images, scales):
    """The ref code's MSC wrapper in training mode, transcribed (libs/models/msc.py:24-43):
    the base network's logits of the input; its logits of the input resized bilinearly
    (align_corners False) by each scale factor; the pixel-wise maximum over all of them, the
    resized inputs' logits first brought bilinearly to the first logits' size. Returned in
    that order: the first, the scaled ones, the maximum."""
    first = base(images)
    scaled = [
        base(F.interpolate(images, scale_factor=scale, mode="bilinear", align_corners=False))
        for scale in scales
    ]
    size = first.shape[-2:]
    aligned = [
        F.interpolate(each, size=size, mode="bilinear", align_corners=False) for each in scaled
    ]
    return [first, *scaled, torch.stack([first, *aligned]).max(dim=0).values]


def test_msc_logits_are_the_ref_codes_multi_scale_outputs():
    torch.manual_seed(0)
    model = build_segmenter("small", 3).eval()
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ours = model.msc_logits(images, [0.5, 0.75])
        theirs = _their_msc_outputs(lambda x: model(x, upsample=False), images, [0.5, 0.75])
    assert [tuple(each.shape[-2:]) for each in ours] == [(8, 8), (4, 4), (6, 6), (8, 8)]
    for mine, reference in zip(ours, theirs, strict=True):
        torch.testing.assert_close(mine, reference, rtol=0, atol=0)


def test_unknown_backbone_names_the_config_key():
    with pytest.raises(ConfigError, match="segmentation.backbone.*'resnet50'"):
        build_segmenter("resnet50", 3)


def test_vgg16_imagenet_weights_load_from_a_local_file(tmp_path):
    reference = vgg16(weights=None)
    path = tmp_path / "vgg16.pth"
    torch.save({k: v for k, v in reference.state_dict().items() if k.startswith("features")}, path)
    model = build_classifier("vgg16", 20, weights=str(path))
    assert torch.equal(model.backbone[28].weight, reference.features[28].weight)
    assert torch.equal(model.backbone[0].bias, reference.features[0].bias)


def test_resnet101_imagenet_weights_load_from_a_local_file(tmp_path):
    reference = resnet101(weights=None)
    path = tmp_path / "resnet101.pth"
    torch.save(reference.state_dict(), path)
    model = build_segmenter("resnet101", 20, weights=str(path))
    assert torch.equal(model.backbone.net.layer4[2].conv3.weight, reference.layer4[2].conv3.weight)


def test_weights_of_another_architecture_are_rejected(tmp_path):
    path = tmp_path / "small.pth"
    torch.save(build_classifier("small", 3).state_dict(), path)
    with pytest.raises(CheckpointError, match="small.pth.*not a torchvision vgg16"):
        build_classifier("vgg16", 3, weights=str(path))


def test_missing_weights_file_says_how_to_fix_it(tmp_path):
    with pytest.raises(ConfigError, match="nope.pth does not exist.*state dict"):
        build_segmenter("resnet101", 3, weights=str(tmp_path / "nope.pth"))


def test_corrupt_weights_file_is_a_checkpoint_error(tmp_path):
    path = tmp_path / "broken.pth"
    path.write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="broken.pth: not a readable state dict"):
        build_classifier("vgg16", 3, weights=str(path))


def test_small_backbone_starts_from_a_pretraining_runs_backbone(tmp_path):
    pretrained = build_classifier("small", 3)
    for parameter in pretrained.backbone.parameters():
        torch.nn.init.normal_(parameter)
    path = tmp_path / "backbone.pth"
    save_backbone(path, pretrained)
    segmenter = build_segmenter("small", 3, weights=str(path))
    for name, value in pretrained.backbone.state_dict().items():
        assert torch.equal(segmenter.backbone.state_dict()[name], value), name


def test_a_whole_model_is_not_a_small_backbone_state_dict(tmp_path):
    path = tmp_path / "model_state.pth"
    torch.save(build_classifier("small", 3).state_dict(), path)
    with pytest.raises(
        CheckpointError, match="model_state.pth: is not a small backbone state dict"
    ):
        build_segmenter("small", 3, weights=str(path))


def test_segmenter_logits_are_float32_under_bf16_autocast_and_keep_fp32_argmax():
    """The backbone may run in bf16; the ASPP sum and upsampling do not: logits near 12 that
    differ by hundredths would round to steps of 0.0625 in bf16, and argmax ties would go to
    background. Here every class's logit is 12 plus a small, feature-dependent term."""
    torch.manual_seed(0)
    model = build_segmenter("small", 5).eval()
    with torch.no_grad():
        for branch in model.head.branches:
            branch.bias.fill_(12.0 / len(model.head.branches))
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        reference = model(images)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed = model(images)
    assert mixed.dtype == torch.float32
    assert (reference - 12.0).abs().max() < 0.5, "logits near 12, as the test intends"
    agreement = (mixed.argmax(1) == reference.argmax(1)).float().mean().item()
    assert agreement > 0.99, agreement
    # What rounding the logits to bf16 would do to the same scores: ties, all settled as
    # background, where the float32 logits put about half the pixels in object classes.
    rounded = reference.to(torch.bfloat16).float().argmax(1)
    assert (rounded == 0).all() and (reference.argmax(1) > 0).float().mean() > 0.3
