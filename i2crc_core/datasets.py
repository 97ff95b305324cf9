"""The torch datasets over a VOC-layout dataset (layout.py): training samples with their
augmentation, and whole images for inference.

Randomness of the training datasets (scale, crop, flip, colour jitter) is drawn from torch's
global RNG inside `__getitem__`; the trainers wrap them in `sampling.SeededSamples`, which seeds
that RNG per sample, so augmentation does not depend on DataLoader workers.
"""

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision.transforms import v2

from .errors import DatasetError
from .fileio import IGNORE, read_image, read_label
from .layout import VocLayout
from .saliency import load_saliency

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Decoded files kept in memory per training dataset and process: the benchmark's training set
# (1,000 images, labels and maps of 64x64, ~16 MB) is decoded once instead of every epoch, which
# was a quarter of a CPU training step; VOC's (~6 GB) is decoded as before beyond the budget.
DECODED_CACHE_BYTES = 256 * 2**20


def normalize(image_uint8: np.ndarray | torch.Tensor) -> torch.Tensor:
    """RGB uint8 image, (H, W, 3) array or (3, H, W) tensor -> ImageNet-normalised float (3, H, W)."""
    if isinstance(image_uint8, np.ndarray):
        image_uint8 = torch.from_numpy(np.ascontiguousarray(image_uint8)).permute(2, 0, 1)
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
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


class ClassificationDataset(Dataset):
    """Images, multi-hot image labels and saliency maps for training the classifier.

    Sample: {"id": str, "image": float (3, S, S) ImageNet-normalised, "label": float (C,)
    multi-hot (index c-1 for class c), "saliency": float (1, S, S) in [0, 1]}.
    Saliency maps are read from `saliency_dir/{id}.png`; with `saliency_dir` None (the
    pretraining, image-level labels only) samples have no "saliency". With `train`, colour jitter
    (brightness, contrast, saturation, hue) and a horizontal flip are drawn from torch's
    global RNG; the flip hits image and saliency together, the jitter only the image.
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
    ):
        missing = [image_id for image_id in ids if image_id not in labels]
        if missing:
            raise DatasetError(f"no image-level label for {len(missing)} ids (first: {missing[0]!r})")
        self.layout = layout
        self.ids = list(ids)
        self.labels = labels
        self.num_classes = num_classes
        self.saliency_dir = None if saliency_dir is None else Path(saliency_dir)
        self.input_size = int(input_size)
        self.train = train
        brightness, contrast, saturation, hue = color_jitter
        self.jitter = v2.ColorJitter(brightness, contrast, saturation, hue)
        self.decoded = DecodedCache()

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> dict:
        image_id = self.ids[index]
        size = (self.input_size, self.input_size)
        image = self.decoded(read_image, self.layout.image_path(image_id))
        maps = [torch.from_numpy(_resize(image, size, cv2.INTER_LINEAR)).permute(2, 0, 1)]
        if self.saliency_dir is not None:
            saliency = self.decoded(load_saliency, self.saliency_dir / f"{image_id}.png",
                                    image.shape[:2])
            maps.append(torch.from_numpy(_resize(saliency, size, cv2.INTER_LINEAR))[None])
        if self.train:
            maps[0] = self.jitter(maps[0].contiguous())
            if torch.rand(()) < 0.5:
                maps = [m.flip(-1) for m in maps]
        label = torch.zeros(self.num_classes)
        label[[c - 1 for c in self.labels[image_id]]] = 1.0
        sample = {"id": image_id, "image": normalize(maps[0]), "label": label}
        if self.saliency_dir is not None:
            sample["saliency"] = maps[1].clamp(0.0, 1.0).contiguous()
        return sample


class SegmentationDataset(Dataset):
    """Images and (pseudo) label maps for training the segmentation network.

    Sample: {"id", "image": float (3, crop, crop) normalised, "label": long (crop, crop)}.
    Labels are read from `label_dir/{id}.png`. With `train`: random scale in `scale_range`
    (bilinear image, nearest label), padding to the crop size with the mean colour (zero after
    normalisation) and 255 (ignore), a random crop, and a horizontal flip when `flip` — all
    drawn from torch's global RNG. Without `train`: no scaling or flip, padding and a centre crop.
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
    ):
        self.layout = layout
        self.ids = list(ids)
        self.label_dir = Path(label_dir)
        self.num_classes = num_classes
        self.crop_size = int(crop_size)
        self.scale_range = (float(scale_range[0]), float(scale_range[1]))
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
            low, high = self.scale_range
            scale = low + (high - low) * float(torch.rand(()))
            size = (max(1, round(image.shape[0] * scale)), max(1, round(image.shape[1] * scale)))
            image = _resize(image, size, cv2.INTER_LINEAR)
            label = _resize(label, size, cv2.INTER_NEAREST)
        image_tensor = normalize(image)
        label_tensor = torch.from_numpy(label.astype(np.int64))
        crop = self.crop_size
        pad_h, pad_w = max(0, crop - label.shape[0]), max(0, crop - label.shape[1])
        if pad_h or pad_w:
            image_tensor = torch.nn.functional.pad(image_tensor, (0, pad_w, 0, pad_h), value=0.0)
            label_tensor = torch.nn.functional.pad(label_tensor, (0, pad_w, 0, pad_h), value=IGNORE)
        height, width = label_tensor.shape
        if self.train:
            top = int(torch.randint(height - crop + 1, ()))
            left = int(torch.randint(width - crop + 1, ()))
        else:
            top, left = (height - crop) // 2, (width - crop) // 2
        image_tensor = image_tensor[:, top : top + crop, left : left + crop]
        label_tensor = label_tensor[top : top + crop, left : left + crop]
        if self.train and self.flip and torch.rand(()) < 0.5:
            image_tensor, label_tensor = image_tensor.flip(-1), label_tensor.flip(-1)
        return {
            "id": image_id,
            "image": image_tensor.contiguous(),
            "label": label_tensor.contiguous(),
        }


class ImageDataset(Dataset):
    """Images at their original size for inference: {"id", "image" (3, H, W), "size" (H, W)}."""

    def __init__(self, layout: VocLayout, ids: Sequence[str]):
        self.layout = layout
        self.ids = list(ids)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> dict:
        image_id = self.ids[index]
        image = read_image(self.layout.image_path(image_id))
        return {"id": image_id, "image": normalize(image), "size": tuple(image.shape[:2])}
