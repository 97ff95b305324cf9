"""The classifier (docs/method.md §2) and DeepLab-v2 (docs/method.md §5), on torchvision backbones.

Backbones:
- ``vgg16``: torchvision's VGG-16 conv layers, made output-stride 8 as in the ref code (pool4
  becomes 3x3 stride 1, pool5 is removed, conv5 uses dilation 2);
- ``resnet101`` (segmentation only): torchvision's ResNet-101 with layer3/layer4 dilated
  (output stride 8);
- ``small``: a BatchNorm CNN of the same output stride 8 that trains on a laptop CPU in
  minutes; it is what the built-in synthetic benchmark uses. It has no ImageNet weights: the
  benchmark's pretraining stage (stages/pretrain.py) makes its stand-in, a state dict of
  `SmallBackbone`.

Models are built without downloading anything; backbone weights are loaded from a local
state-dict file when `weights` names one (torchvision's ImageNet file, or the pretraining
stage's `backbone.pth` for ``small``).

A model is rebuilt from its architecture id (a string such as
``segmenter/resnet101/classes=20/aspp=6-12-18-24``) stored with its weights, so a checkpoint
never silently loads into a different network. A segmenter that converts its input to the ref
code's convention (`Segmenter`) says so at the end of its id (``.../input=caffe_bgr``); an id
without it means ImageNet-normalised input, as every id written before the option existed.
"""

import functools
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import resnet101, vgg16

from ..data.datasets import IMAGENET_MEAN, IMAGENET_STD
from ..infra.errors import CheckpointError, ConfigError
from . import torchfile

CLASSIFIER_BACKBONES = ("small", "vgg16")
SEGMENTER_BACKBONES = ("small", "resnet101", "vgg16")
DEEPLAB_ASPP_RATES = (6, 12, 18, 24)
# The small backbone's feature maps are 8x8 on the benchmark's 64-pixel crops (output stride
# 8): the paper's rates 6-24 would read only padding.
SMALL_ASPP_RATES = (1, 2, 4, 6)
# The small backbone's block widths and its classifier head's: sized with the benchmark's
# budgets (docs/method.md §9), so that the fully supervised segmenter reaches its plateau in
# CPU minutes.
SMALL_WIDTHS = (16, 32, 64, 64, 64)
SMALL_HEAD_WIDTH = 64
# What a segmenter's backbone is fed (`Segmenter`): the datasets' ImageNet-normalised RGB as it
# is, or the ref code's Caffe convention.
INPUT_NORMALISATIONS = ("imagenet", "caffe_bgr")
# The Caffe ImageNet mean, B, G, R on 0-255 (ref code: segmentation/configs/voc12.yaml IMAGE.MEAN)
CAFFE_MEAN_BGR = (104.008, 116.669, 122.675)

_VGG_POOL4, _VGG_POOL5, _VGG_CONV5 = 23, 30, (24, 26, 28)


def _conv_bn(in_channels: int, out_channels: int, stride: int = 1, dilation: int = 1):
    return nn.Sequential(
        nn.Conv2d(
            in_channels, out_channels, 3, stride, padding=dilation, dilation=dilation, bias=False
        ),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class SmallBackbone(nn.Sequential):
    """Five BN conv blocks of SMALL_WIDTHS: three stride-2 (output stride 8) then two dilated."""

    out_channels = SMALL_WIDTHS[-1]

    def __init__(self):
        one, two, three, four, five = SMALL_WIDTHS
        super().__init__(
            _conv_bn(3, one, stride=2),
            _conv_bn(one, two, stride=2),
            _conv_bn(two, three, stride=2),
            _conv_bn(three, four, dilation=2),
            _conv_bn(four, five, dilation=2),
        )


def _vgg16_os8() -> nn.Sequential:
    features = vgg16(weights=None).features
    features[_VGG_POOL4] = nn.MaxPool2d(kernel_size=3, stride=1, padding=1)
    for index in _VGG_CONV5:
        features[index].dilation = (2, 2)
        features[index].padding = (2, 2)
    del features[_VGG_POOL5]
    features.out_channels = 512
    return features


class _ResNetFeatures(nn.Module):
    out_channels = 2048

    def __init__(self):
        super().__init__()
        self.net = resnet101(weights=None, replace_stride_with_dilation=[False, True, True])
        del self.net.fc

    def forward(self, x):
        net = self.net
        x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
        return net.layer4(net.layer3(net.layer2(net.layer1(x))))


def local_weights_file(spec, backbone: str) -> Path:
    """The existing local file a `weights` setting names, else a ConfigError saying what to give."""
    path = Path(spec).expanduser()
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise ConfigError(
            f"weights file {path} {what}: give the path of a {backbone} backbone state dict "
            "(.pth), 'imagenet', 'pretrained', or null"
        )
    return path


def _read_state_dict(path) -> dict:
    state = torchfile.load(path, "state dict")
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: does not hold a state dict")
    return state


def _load_backbone_weights(backbone: nn.Module, name: str, path) -> None:
    path = local_weights_file(path, name)
    state = _read_state_dict(path)
    if name == "small":
        what, target = "small backbone state dict (the pretraining stage's backbone.pth)", backbone
    elif name == "vgg16":
        state = {
            key.removeprefix("features."): value
            for key, value in state.items()
            if key.startswith("features.")
        }
        # Removing pool5 shifted nothing that holds weights: conv indices are unchanged.
        what, target = f"torchvision {name} ImageNet state dict", backbone
    else:
        state = {key: value for key, value in state.items() if not key.startswith("fc.")}
        what, target = f"torchvision {name} ImageNet state dict", backbone.net
    try:
        target.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise CheckpointError(f"{path}: is not a {what} ({error})") from None


def _backbone(name: str, weights) -> nn.Module:
    if name == "small":
        backbone = SmallBackbone()
    elif name == "vgg16":
        backbone = _vgg16_os8()
    elif name == "resnet101":
        backbone = _ResNetFeatures()
    else:
        raise ConfigError(f"unknown backbone '{name}'")
    if weights is not None:
        _load_backbone_weights(backbone, name, weights)
    return backbone


def _lr_groups(
    backbone: nn.Module,
    head: nn.Module,
    lr: float,
    *,
    head_multiplier: float,
    bias_multiplier: float,
) -> list[dict]:
    """Learning-rate groups: the head's parameters at lr x head_multiplier, every bias at that x
    bias_multiplier (the authors' classifier: x10 and x2, so head biases x20; their segmenter:
    one rate, x1 and x1)."""
    groups = []
    for module, multiplier in ((backbone, 1), (head, head_multiplier)):
        weights = [p for n, p in module.named_parameters() if not n.endswith("bias")]
        biases = [p for n, p in module.named_parameters() if n.endswith("bias")]
        groups.append({"params": weights, "lr": lr * multiplier})
        if biases:
            groups.append({"params": biases, "lr": lr * multiplier * bias_multiplier})
    return groups


HEAD_INITS = ("pytorch", "fan_out_normal")


def _fan_out_normal(module: nn.Module) -> None:
    """The authors' initialisation of a conv layer (classification/models/vgg.py,
    `_initialize_weights`): weights from N(0, 2 / (k_h k_w out_channels)), biases 0. BatchNorm
    keeps PyTorch's weight 1, bias 0, which is theirs too."""
    if isinstance(module, nn.Conv2d):
        fan_out = module.kernel_size[0] * module.kernel_size[1] * module.out_channels
        nn.init.normal_(module.weight, std=(2.0 / fan_out) ** 0.5)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


class Classifier(nn.Module):
    """Backbone, three 3x3 conv + ReLU, 1x1 conv to C channels: the attention map F.

    With the ``small`` backbone the three head convs also get BatchNorm: trained from scratch
    without it, the classifier stayed at the label prior on the synthetic benchmark (loss
    0.585 after 15 epochs, against 0.29 with it). The VGG-16 head is the paper's, BN-free.

    `forward` returns F (N, C, h, w); q_c is its global average (losses.classification_loss).
    `head_init` (HEAD_INITS): the head's initial weights, PyTorch's or the authors' (see
    `_fan_out_normal`); the backbone's come from `weights`.
    """

    def __init__(self, backbone_name: str, num_classes: int, weights=None, head_init="pytorch"):
        super().__init__()
        if backbone_name not in CLASSIFIER_BACKBONES:
            raise ConfigError(
                f"config key 'classifier.backbone': '{backbone_name}' is not one of "
                f"{', '.join(CLASSIFIER_BACKBONES)}"
            )
        self.backbone_name = backbone_name
        self.num_classes = num_classes
        self.backbone = _backbone(backbone_name, weights)
        layers = []
        in_channels = self.backbone.out_channels
        width = 512 if backbone_name == "vgg16" else SMALL_HEAD_WIDTH
        for _ in range(3):
            if backbone_name == "vgg16":
                layers += [nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(inplace=True)]
            else:
                layers.append(_conv_bn(in_channels, width))
            in_channels = width
        layers.append(nn.Conv2d(width, num_classes, 1))
        self.head = nn.Sequential(*layers)
        if head_init not in HEAD_INITS:
            raise ConfigError(
                f"config key 'classifier.head_init': '{head_init}' is not one of "
                f"{', '.join(HEAD_INITS)}"
            )
        if head_init == "fan_out_normal":
            self.head.apply(_fan_out_normal)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(images))

    def param_groups(self, lr: float, *, head: float, bias: float) -> list[dict]:
        return _lr_groups(self.backbone, self.head, lr, head_multiplier=head, bias_multiplier=bias)


class ASPP(nn.Module):
    """DeepLab-v2 ASPP: the sum of parallel dilated 3x3 convs straight to class logits."""

    def __init__(self, in_channels: int, num_outputs: int, rates):
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Conv2d(in_channels, num_outputs, 3, padding=rate, dilation=rate) for rate in rates
        )
        for branch in self.branches:
            nn.init.normal_(branch.weight, std=0.01)
            nn.init.zeros_(branch.bias)

    def forward(self, x):
        return sum(branch(x) for branch in self.branches)


@functools.cache
def _caffe_affine(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    # x = (u / 255 - mean) / std per RGB channel, so u - caffe_mean = 255 std x + 255 mean -
    # caffe_mean; the constants in float64, then rounded once to float32.
    std = torch.tensor(IMAGENET_STD, dtype=torch.float64)
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float64)
    caffe_mean_rgb = torch.tensor(CAFFE_MEAN_BGR[::-1], dtype=torch.float64)
    scale, shift = 255 * std, 255 * mean - caffe_mean_rgb
    return (
        scale.float().view(1, 3, 1, 1).to(device),
        shift.float().view(1, 3, 1, 1).to(device),
    )


def caffe_bgr(images: torch.Tensor) -> torch.Tensor:
    """ImageNet-normalised RGB (N, 3, H, W), as datasets.normalize makes it, -> the ref code's
    input: BGR channel order, 0-255 levels minus CAFFE_MEAN_BGR, no division by a std
    (segmentation/libs/datasets/base.py). An exact per-channel affine map and a channel
    reversal; float32 rounding leaves it within about 1e-5 of the ref code's values."""
    scale, shift = _caffe_affine(images.device)
    return (images * scale + shift).flip(1)


def rescale(images: torch.Tensor, scale: float) -> torch.Tensor:
    """A batch (N, C, H, W) resized bilinearly by `scale` (sides rounded down, as
    F.interpolate's `scale_factor` makes them); unchanged at scale 1."""
    if scale == 1:
        return images
    return F.interpolate(images, scale_factor=scale, mode="bilinear", align_corners=False)


def _upsampled(logits: torch.Tensor, size) -> torch.Tensor:
    if logits.shape[-2:] == tuple(size):
        return logits
    return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)


def max_fused(logits, size) -> torch.Tensor:
    """The element-wise maximum of logit maps (N, K, h_i, w_i), an iterable, each first
    upsampled bilinearly to `size` (one already of that size as it is)."""
    return functools.reduce(torch.maximum, (_upsampled(each, size) for each in logits))


class Segmenter(nn.Module):
    """DeepLab-v2: backbone (output stride 8) + ASPP; logits (N, C+1, H, W) at input size, or at
    feature resolution (about 1/8 of it) with `upsample=False`.

    Input is always ImageNet-normalised RGB (datasets.normalize). With `input_normalisation`
    "caffe_bgr" the model turns it into the ref code's convention (`caffe_bgr`: BGR, 0-255
    minus the Caffe mean, no std, which the ref code feeds torchvision's ImageNet ResNet-101)
    at the start of `forward`, in training and inference alike. The conversion belongs to the
    model, not to the data pipeline, because every inference path (the predict stage, `python
    -m i2crc_core.predict`, the figures) feeds a loaded model the datasets' input: with the
    convention in the architecture id (`architecture_id`), each follows the trained model
    without a setting of its own, and the datasets stay one for all models. One inexactness:
    crop padding (datasets.SegmentationDataset) is zero after ImageNet normalisation, the
    ImageNet mean colour, which converts to 255 x ImageNet mean - Caffe mean = (-0.48, -0.39,
    +1.00) in B, G, R, where the ref code pads with exactly 0.
    """

    def __init__(
        self,
        backbone_name: str,
        num_classes: int,
        weights=None,
        aspp_rates=None,
        input_normalisation: str = "imagenet",
    ):
        super().__init__()
        if backbone_name not in SEGMENTER_BACKBONES:
            raise ConfigError(
                f"config key 'segmentation.backbone': '{backbone_name}' is not one of "
                f"{', '.join(SEGMENTER_BACKBONES)}"
            )
        if input_normalisation not in INPUT_NORMALISATIONS:
            raise ConfigError(
                f"config key 'segmentation.input_normalisation': '{input_normalisation}' is not "
                f"one of {', '.join(INPUT_NORMALISATIONS)}"
            )
        if aspp_rates is None:
            aspp_rates = SMALL_ASPP_RATES if backbone_name == "small" else DEEPLAB_ASPP_RATES
        self.backbone_name = backbone_name
        self.num_classes = num_classes
        self.aspp_rates = tuple(int(rate) for rate in aspp_rates)
        self.input_normalisation = input_normalisation
        self.backbone = _backbone(backbone_name, weights)
        self.head = ASPP(self.backbone.out_channels, num_classes + 1, self.aspp_rates)

    def forward(self, images: torch.Tensor, *, upsample: bool = True) -> torch.Tensor:
        inputs = caffe_bgr(images) if self.input_normalisation == "caffe_bgr" else images
        features = self.backbone(inputs)
        # The ASPP sum and the upsampling in float32 under any autocast (about 2 % of the
        # FLOPs): in bf16, logits of 8-16 round to steps of 0.0625, and argmax ties at object
        # boundaries go to the lowest index, background.
        with torch.autocast(images.device.type, enabled=False):
            logits = self.head(features.float())
            if not upsample:
                return logits
            return F.interpolate(
                logits, size=images.shape[-2:], mode="bilinear", align_corners=False
            )

    def scale_logits(self, images: torch.Tensor, scales) -> list[torch.Tensor]:
        """The logits at feature resolution of `images` resized by each of `scales` (`rescale`)."""
        return [self(rescale(images, scale), upsample=False) for scale in scales]

    def msc_logits(self, images: torch.Tensor, scales) -> list[torch.Tensor]:
        """The ref code's multi-scale training outputs (segmentation/libs/models/msc.py, MSC in
        training mode), all at feature resolution: the logits of `images`, those of `images`
        resized by each of `scales`, and the element-wise maximum of all of them after each
        resized one is upsampled bilinearly to the first's size. Each is scored against the
        labels resized to its own size (losses.msc_segmentation_loss)."""
        logits = self.scale_logits(images, [1, *scales])
        return [*logits, max_fused(logits, logits[0].shape[-2:])]

    def param_groups(self, lr: float, *, head: float, bias: float) -> list[dict]:
        return _lr_groups(self.backbone, self.head, lr, head_multiplier=head, bias_multiplier=bias)


def build_classifier(
    backbone: str, num_classes: int, weights=None, head_init: str = "pytorch"
) -> Classifier:
    return Classifier(backbone, num_classes, weights, head_init)


def build_segmenter(
    backbone: str,
    num_classes: int,
    weights=None,
    aspp_rates=None,
    input_normalisation: str = "imagenet",
) -> Segmenter:
    return Segmenter(backbone, num_classes, weights, aspp_rates, input_normalisation)


def architecture_id(model: nn.Module) -> str:
    if isinstance(model, Classifier):
        return f"classifier/{model.backbone_name}/classes={model.num_classes}"
    if isinstance(model, Segmenter):
        rates = "-".join(str(rate) for rate in model.aspp_rates)
        architecture = f"segmenter/{model.backbone_name}/classes={model.num_classes}/aspp={rates}"
        if model.input_normalisation != "imagenet":
            architecture += f"/input={model.input_normalisation}"
        return architecture
    raise TypeError(f"not an i2crc model: {type(model).__name__}")


def build_from_architecture_id(architecture: str) -> nn.Module:
    """An untrained model of the architecture `architecture_id` described."""
    try:
        kind, backbone, classes, *rest = architecture.split("/")
        num_classes = int(classes.removeprefix("classes="))
        if kind == "classifier" and not rest:
            return build_classifier(backbone, num_classes)
        if kind == "segmenter" and len(rest) in (1, 2):
            aspp, *given = rest
            rates = [int(rate) for rate in aspp.removeprefix("aspp=").split("-")]
            normalisation = given[0].removeprefix("input=") if given else "imagenet"
            return build_segmenter(
                backbone, num_classes, aspp_rates=rates, input_normalisation=normalisation
            )
    except (ValueError, ConfigError):
        pass
    raise CheckpointError(f"unknown model architecture '{architecture}'")
