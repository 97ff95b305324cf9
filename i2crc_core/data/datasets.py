"""The torch datasets over a VOC-layout dataset (layout.py): training samples with their
augmentation, and whole images for inference.

Randomness of the training datasets (scale, crop, flip, colour jitter) is drawn from torch's
global RNG inside `__getitem__`; the trainers wrap them in `sampling.SeededSamples`, which seeds
that RNG per sample, so augmentation does not depend on DataLoader workers.

A training sample is made in two halves. `__getitem__` (in the DataLoader workers) decodes,
resizes, crops and flips in uint8 and draws every random choice; the dataset's `finish(batch,
device)` (in the training process, on the training device) does the float work: the colour
jitter with the parameters drawn for each sample, then the ImageNet normalisation in float32.
uint8 crops are a quarter of the float bytes to collate and copy, the colour jitter (~5 ms of
the ~9 ms a worker spent on a 256² sample) runs on the GPU, and the segmenter
normalises its crop, not the whole rescaled image: a worker makes ~3x the samples
(bench/bench_loader.py). On the CPU, batches are bit for bit those of the datasets that did it
all in `__getitem__` (tests/unit/test_datasets.py):
- the jitter's parameters are drawn by torchvision's `ColorJitter.make_params` at the same point
  of the sample's random stream, and `finish` applies them with `ColorJitter.transform`, the same
  kernels on the same uint8 image, before the flip as before;
- normalisation is pointwise, so normalising the crop equals cropping the normalised image, and
  the padding, the mean colour (zero after normalisation), is set to exactly zero after it.
"""

import functools
import math
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms import v2

from ..infra.errors import DatasetError
from ..infra.fileio import IGNORE, read_image, read_label
from .layout import VocLayout
from .saliency import load_saliency

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Decoded files kept in memory per training dataset and process: the benchmark's training set
# (1,000 images, labels and maps of 64x64, ~16 MB) is decoded once instead of every epoch, which
# was a quarter of a CPU training step; VOC's (~6 GB) is decoded as before beyond the budget.
DECODED_CACHE_BYTES = 256 * 2**20


# ColorJitter's parameter names, in the order of its ops (make_params' `fn_idx` indexes them)
JITTER_FACTORS = ("brightness_factor", "contrast_factor", "saturation_factor", "hue_factor")


@functools.cache
def _mean_std(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    return (
        torch.tensor(IMAGENET_MEAN, device=device).view(3, 1, 1),
        torch.tensor(IMAGENET_STD, device=device).view(3, 1, 1),
    )


def normalize(image_uint8: np.ndarray | torch.Tensor) -> torch.Tensor:
    """RGB uint8 image, (H, W, 3) array or (..., 3, H, W) tensor on any device ->
    ImageNet-normalised float32 (..., 3, H, W) on that device."""
    if isinstance(image_uint8, np.ndarray):
        image_uint8 = torch.from_numpy(np.ascontiguousarray(image_uint8)).permute(2, 0, 1)
    mean, std = _mean_std(image_uint8.device)
    return (image_uint8.float() / 255.0 - mean) / std


class DecodedCache:
    """`load(path, *args)`'s arrays by call, each decoded once while they fit in `max_bytes`.
    The arrays are shared between epochs: the datasets never write into them (every
    augmentation makes a new array or tensor)."""

    def __init__(self, max_bytes: int = DECODED_CACHE_BYTES):
        self.max_bytes = max_bytes
        self._arrays: dict = {}
        self._bytes = 0

    def __call__(self, load, path, *args) -> np.ndarray:
        key = (str(path), args)
        array = self._arrays.get(key)
        if array is None:
            array = load(path, *args)
            if self._bytes + array.nbytes <= self.max_bytes:
                self._arrays[key] = array
                self._bytes += array.nbytes
        return array


def _resize(array: np.ndarray, size_hw: tuple[int, int], interpolation: int) -> np.ndarray:
    if array.shape[:2] == tuple(size_hw):
        return array
    return cv2.resize(array, (size_hw[1], size_hw[0]), interpolation=interpolation)


def warp_image(image: np.ndarray, side: int) -> np.ndarray:
    """An RGB uint8 image (H, W, 3) resized to side x side as the authors' classifier resizes
    its input (PIL's bilinear filter, which averages over the source pixels when shrinking;
    classification/utils/transforms/functional.py, resize): the classifier's training input and
    the warped CAM input (cams.input_size) alike."""
    if image.shape[:2] == (side, side):
        return image
    return np.array(Image.fromarray(image).resize((side, side), Image.BILINEAR))


class ClassificationDataset(Dataset):
    """Images, multi-hot image labels and saliency maps for training the classifier.

    Sample: {"id": str, "image": uint8 (3, S, S) resized, neither jittered nor flipped,
    "label": float (C,) multi-hot (index c-1 for class c), "saliency": float (1, S, S) in [0, 1]
    and flipped, "flip": bool, "jitter_order": long (4,), "jitter_factors": float64 (4,)}.
    Saliency maps are read from `saliency_dir/{id}.png`; with `saliency_dir` None (the
    pretraining, image-level labels only) samples have no "saliency". With `train`, colour jitter
    (brightness, contrast, saturation, hue: ColorJitter's op order and factors, NaN for an op that
    is off) and, with `flip`, a horizontal flip are drawn from torch's global RNG; the flip hits
    image and saliency together, the jitter only the image. `finish` jitters, flips and
    normalises the images on the device: {"image": float (B, 3, S, S), "label", "saliency"}.
    Resizing follows the authors' code: the image by `warp_image`, the saliency map (at image
    size) by nearest neighbour (classification/utils/LoadData.py, VOCDataset.__getitem__).
    """

    def __init__(
        self,
        layout: VocLayout,
        ids: Sequence[str],
        labels: dict[str, Sequence[int]],
        num_classes: int,
        saliency_dir,
        input_size: int,
        train: bool,
        color_jitter: tuple[float, float, float, float] = (0.3, 0.3, 0.3, 0.1),
        flip: bool = True,
    ):
        missing = [image_id for image_id in ids if image_id not in labels]
        if missing:
            raise DatasetError(
                f"no image-level label for {len(missing)} ids (first: {missing[0]!r})"
            )
        self.layout = layout
        self.ids = list(ids)
        self.labels = labels
        self.num_classes = num_classes
        self.saliency_dir = None if saliency_dir is None else Path(saliency_dir)
        self.input_size = int(input_size)
        self.train = train
        self.flip = flip
        brightness, contrast, saturation, hue = color_jitter
        self.jitter = v2.ColorJitter(brightness, contrast, saturation, hue)
        self.decoded = DecodedCache()

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> dict:
        image_id = self.ids[index]
        size = (self.input_size, self.input_size)
        image = self.decoded(read_image, self.layout.image_path(image_id))
        image_tensor = torch.from_numpy(warp_image(image, self.input_size)).permute(2, 0, 1)
        jitter = dict.fromkeys(JITTER_FACTORS, None) | {"fn_idx": torch.arange(4)}
        flip = False
        if self.train:
            # the draws ColorJitter's forward makes before transforming the image
            jitter = self.jitter.make_params([image_tensor])
            flip = self.flip and bool(torch.rand(()) < 0.5)
        label = torch.zeros(self.num_classes)
        label[[c - 1 for c in self.labels[image_id]]] = 1.0
        sample = {
            "id": image_id,
            "image": image_tensor,
            "label": label,
            "flip": torch.tensor(flip),
            "jitter_order": jitter["fn_idx"],
            "jitter_factors": torch.tensor(
                [math.nan if jitter[name] is None else jitter[name] for name in JITTER_FACTORS],
                dtype=torch.float64,
            ),
        }
        if self.saliency_dir is not None:
            saliency = self.decoded(
                load_saliency, self.saliency_dir / f"{image_id}.png", image.shape[:2]
            )
            saliency = torch.from_numpy(_resize(saliency, size, cv2.INTER_NEAREST))[None]
            sample["saliency"] = (saliency.flip(-1) if flip else saliency).clamp(0.0, 1.0)
        return sample

    def finish(self, batch: dict, device: torch.device) -> dict:
        """A collated batch of samples, on `device`: each image jittered with its own
        parameters (one image at a time: parameters and op order differ), flipped where drawn,
        normalised."""
        images = batch["image"].to(device, non_blocking=True)
        factors = batch["jitter_factors"]
        if not factors.isnan().all():
            images = torch.stack(
                [
                    self.jitter.transform(
                        image,
                        {"fn_idx": order}
                        | {
                            name: None if math.isnan(value) else value
                            for name, value in zip(JITTER_FACTORS, values)
                        },
                    )
                    for image, order, values in zip(images, batch["jitter_order"], factors.tolist())
                ]
            )
        flip = batch["flip"].to(device, non_blocking=True).view(-1, 1, 1, 1)
        finished = {
            "image": normalize(torch.where(flip, images.flip(-1), images)),
            "label": batch["label"].to(device, non_blocking=True),
        }
        if "saliency" in batch:
            finished["saliency"] = batch["saliency"].to(device, non_blocking=True)
        return finished


class SegmentationDataset(Dataset):
    """Images and (pseudo) label maps for training the segmentation network.

    Sample: {"id", "image": uint8 (3, crop, crop), "label": uint8 (crop, crop), "content": long
    (4,) the rows top..bottom-1 and columns left..right-1 of the crop that hold image (the rest
    is padding)}. Labels are read from `label_dir/{id}.png`. With `train`: a random scale
    (uniform in `scale_range`, or with `scale_step` uniform over scale_range[0], + scale_step,
    ... up to scale_range[1], as the ref code's choice of 0.5, 0.75, ..., 1.5; bilinear image,
    nearest label), padding at the bottom and right to the crop size with 255 (ignore) in the
    label, a random crop, and a horizontal flip when `flip` — all drawn from torch's global
    RNG. Without `train`: no scaling or flip, padding and a centre crop.
    `finish` normalises the images on the device and pads them with the mean colour (zero after
    normalisation): {"image": float (B, 3, crop, crop), "label": long (B, crop, crop)}.
    """

    def __init__(
        self,
        layout: VocLayout,
        ids: Sequence[str],
        label_dir,
        num_classes: int,
        crop_size: int,
        scale_range: tuple[float, float] = (0.5, 1.5),
        flip: bool = True,
        train: bool = True,
        scale_step: float | None = None,
    ):
        self.layout = layout
        self.ids = list(ids)
        self.label_dir = Path(label_dir)
        self.num_classes = num_classes
        self.crop_size = int(crop_size)
        self.scale_range = (float(scale_range[0]), float(scale_range[1]))
        self.scales = None
        if scale_step is not None:
            low, high = self.scale_range
            # the tolerance keeps a high end that the steps reach up to rounding
            count = math.floor((high - low) / scale_step + 1e-9) + 1
            self.scales = [low + step * scale_step for step in range(count)]
        self.flip = flip
        self.train = train
        self.decoded = DecodedCache()

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> dict:
        image_id = self.ids[index]
        image = self.decoded(read_image, self.layout.image_path(image_id))
        label_path = self.label_dir / f"{image_id}.png"
        label = self.decoded(read_label, label_path, self.num_classes)
        if label.shape != image.shape[:2]:
            raise DatasetError(
                f"{label_path}: label size {label.shape[1]}x{label.shape[0]} differs from "
                f"image size {image.shape[1]}x{image.shape[0]}"
            )
        if self.train:
            if self.scales is None:
                low, high = self.scale_range
                scale = low + (high - low) * float(torch.rand(()))
            else:
                scale = self.scales[int(torch.randint(len(self.scales), ()))]
            size = (max(1, round(image.shape[0] * scale)), max(1, round(image.shape[1] * scale)))
            image = _resize(image, size, cv2.INTER_LINEAR)
            label = _resize(label, size, cv2.INTER_NEAREST)
        crop = self.crop_size
        # the image padded at the bottom and right to at least the crop size
        height, width = max(crop, label.shape[0]), max(crop, label.shape[1])
        if self.train:
            top = int(torch.randint(height - crop + 1, ()))
            left = int(torch.randint(width - crop + 1, ()))
        else:
            top, left = (height - crop) // 2, (width - crop) // 2
        rows, cols = min(crop, label.shape[0] - top), min(crop, label.shape[1] - left)
        image_crop = np.zeros((crop, crop, 3), np.uint8)
        image_crop[:rows, :cols] = image[top : top + rows, left : left + cols]
        label_crop = np.full((crop, crop), IGNORE, np.uint8)
        label_crop[:rows, :cols] = label[top : top + rows, left : left + cols]
        content = [0, rows, 0, cols]
        if self.train and self.flip and torch.rand(()) < 0.5:
            image_crop, label_crop = cv2.flip(image_crop, 1), cv2.flip(label_crop, 1)
            content = [0, rows, crop - cols, crop]
        return {
            "id": image_id,
            "image": torch.from_numpy(image_crop).permute(2, 0, 1),
            "label": torch.from_numpy(label_crop),
            "content": torch.tensor(content),
        }

    @staticmethod
    def finish(batch: dict, device: torch.device) -> dict:
        """A collated batch of samples, on `device`: images normalised, their padding zero;
        labels long."""
        images = normalize(batch["image"].to(device, non_blocking=True))
        top, bottom, left, right = batch["content"].to(device, non_blocking=True).T[..., None]
        rows = torch.arange(images.shape[-2], device=device)
        cols = torch.arange(images.shape[-1], device=device)
        inside = ((top <= rows) & (rows < bottom))[:, None, :, None] & (
            (left <= cols) & (cols < right)
        )[:, None, None, :]
        return {
            "image": torch.where(inside, images, 0.0),
            "label": batch["label"].to(device, non_blocking=True).long(),
        }


class ImageDataset(Dataset):
    """Images for inference: {"id", "image" (3, H, W), "size" (H, W)}, at their original size
    (H, W), or with `input_size` S warped to S x S (`warp_image`), "size" the original."""

    def __init__(self, layout: VocLayout, ids: Sequence[str], input_size: int | None = None):
        self.layout = layout
        self.ids = list(ids)
        self.input_size = input_size

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> dict:
        image_id = self.ids[index]
        image = self.layout.read_image(image_id)
        size = tuple(image.shape[:2])
        if self.input_size is not None:
            image = warp_image(image, self.input_size)
        return {"id": image_id, "image": normalize(image), "size": size}
