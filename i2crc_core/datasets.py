"""VOC2012-layout datasets: split and label lists, validation, and the torch datasets.

Layout under a root: `{image_dir}/{id}.jpg`, `{mask_dir}/{id}.png`, `{split_dir}/{split}.txt`.
An id is a whole stripped line of a split list, so ids with spaces or non-ASCII characters
work; all text files are UTF-8.

Randomness of the training datasets (scale, crop, flip, colour jitter) is drawn from torch's
global RNG inside `__getitem__`; the trainers wrap them in `sampling.SeededSamples`, which seeds
that RNG per sample, so augmentation does not depend on DataLoader workers.
"""

from collections.abc import Iterable, Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset
from torchvision.transforms import v2

from .errors import DatasetError
from .fileio import IGNORE, atomic_path, read_image, read_label
from .saliency import load_saliency

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)  # fmt: skip

COCO_CLASSES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich",
    "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote",
    "keyboard", "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book",
    "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush",
)  # fmt: skip

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalize(image_uint8: np.ndarray | torch.Tensor) -> torch.Tensor:
    """RGB uint8 image, (H, W, 3) array or (3, H, W) tensor -> ImageNet-normalised float (3, H, W)."""
    if isinstance(image_uint8, np.ndarray):
        image_uint8 = torch.from_numpy(np.ascontiguousarray(image_uint8)).permute(2, 0, 1)
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return (image_uint8.float() / 255.0 - mean) / std


def _read_lines(path: Path, what: str) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DatasetError(f"{path}: {what} is missing") from None
    except UnicodeDecodeError as error:
        raise DatasetError(f"{path}: {what} is not UTF-8 text ({error})") from None


def read_split(path) -> list[str]:
    """Image ids of a split list, in file order (one id per line; blank lines skipped)."""
    path = Path(path)
    ids: list[str] = []
    first_line: dict[str, int] = {}
    for number, line in enumerate(_read_lines(path, "split list"), start=1):
        image_id = line.strip()
        if not image_id:
            continue
        if image_id in first_line:
            raise DatasetError(
                f"{path}: duplicate id {image_id!r} on lines {first_line[image_id]} and {number}"
            )
        first_line[image_id] = number
        ids.append(image_id)
    if not ids:
        raise DatasetError(f"{path}: split list is empty")
    return ids


def read_image_labels(path, num_classes: int) -> dict[str, tuple[int, ...]]:
    """Read a `train_cls.txt`-style list: `id c1 c2 ...` with 0-based object classes.

    Returns 1-based class ids (1..C), sorted and unique. An id containing whitespace is
    separated from its classes by a tab (as `write_image_labels` writes it).
    """
    path = Path(path)
    labels: dict[str, tuple[int, ...]] = {}
    first_line: dict[str, int] = {}
    for number, line in enumerate(_read_lines(path, "image-level label list"), start=1):
        if not line.strip():
            continue
        if "\t" in line:
            image_id, rest = line.split("\t", 1)
            image_id, tokens = image_id.strip(), rest.split()
        else:
            image_id, *tokens = line.split()
        where = f"{path}, line {number}"
        try:
            classes = sorted({int(token) for token in tokens})
        except ValueError:
            raise DatasetError(f"{where}: class indices must be integers, got {line!r}") from None
        if not classes:
            raise DatasetError(f"{where}: image {image_id!r} has no object class")
        bad = [c for c in classes if not 0 <= c < num_classes]
        if bad:
            raise DatasetError(
                f"{where}: class index {bad[0]} is outside 0..{num_classes - 1} (0-based object classes)"
            )
        if image_id in first_line:
            raise DatasetError(
                f"{path}: duplicate id {image_id!r} on lines {first_line[image_id]} and {number}"
            )
        first_line[image_id] = number
        labels[image_id] = tuple(c + 1 for c in classes)
    if not labels:
        raise DatasetError(f"{path}: image-level label list is empty")
    return labels


def write_image_labels(path, labels: dict[str, Sequence[int]]) -> None:
    """Write 1-based image labels as a `train_cls.txt` list (0-based on disk), atomically."""
    lines = []
    for image_id, classes in labels.items():
        if "\t" in image_id or "\n" in image_id:
            raise DatasetError(f"{path}: image id {image_id!r} contains a tab or newline")
        separator = "\t" if any(ch.isspace() for ch in image_id) else " "
        lines.append(image_id + separator + " ".join(str(int(c) - 1) for c in sorted(classes)))
    with atomic_path(path) as tmp:
        tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


class VocLayout:
    """Paths of a VOC-layout dataset under `root`."""

    def __init__(
        self,
        root,
        image_dir: str = "JPEGImages",
        mask_dir: str = "SegmentationClass",
        split_dir: str = "ImageSets/Segmentation",
    ):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetError(f"{self.root}: dataset root does not exist or is not a directory")
        self.image_dir = self.root / image_dir
        self.mask_dir = self.root / mask_dir
        self.split_dir = self.root / split_dir

    def image_path(self, image_id: str) -> Path:
        return self.image_dir / f"{image_id}.jpg"

    def mask_path(self, image_id: str) -> Path:
        return self.mask_dir / f"{image_id}.png"

    def split_path(self, split: str) -> Path:
        return self.split_dir / f"{split}.txt"

    def image_size(self, image_id: str) -> tuple[int, int]:
        """(H, W) of an image from its header only (no decoding)."""
        path = self.image_path(image_id)
        try:
            with Image.open(path) as image:
                width, height = image.size
        except FileNotFoundError:
            raise DatasetError(f"{path}: image of listed id {image_id!r} is missing") from None
        except (UnidentifiedImageError, OSError, SyntaxError) as error:
            raise DatasetError(f"{path}: image file is unreadable or corrupt ({error})") from None
        return height, width

    def validate(self, ids: Iterable[str], num_classes: int) -> None:
        """Check every listed image and mask exists, is readable, valid, and of equal size."""
        for image_id in ids:
            image_size = self.image_size(image_id)
            mask_path = self.mask_path(image_id)
            if not mask_path.is_file():
                raise DatasetError(f"{mask_path}: label of listed id {image_id!r} is missing")
            mask = read_label(mask_path, num_classes)
            if mask.shape != image_size:
                raise DatasetError(
                    f"{mask_path}: label size {mask.shape[1]}x{mask.shape[0]} differs from image "
                    f"size {image_size[1]}x{image_size[0]} of {self.image_path(image_id)}"
                )


def present_classes(mask: np.ndarray, num_classes: int) -> tuple[int, ...]:
    """1-based object classes present in a label mask (0 and 255 left out)."""
    values = np.unique(mask)
    return tuple(int(v) for v in values if 1 <= v <= num_classes)


def image_labels_from_masks(
    layout, ids: Iterable[str], num_classes: int, mask_dir: str | None = None
) -> dict[str, tuple[int, ...]]:
    """Image-level labels (1-based) derived from the ground-truth masks.

    `layout` is a VocLayout, or a dataset root (then `mask_dir`, default SegmentationClass,
    names the mask folder). An image whose mask has no object class is an error: it could
    contribute nothing to weakly supervised training and usually means a broken mask.
    """
    if not isinstance(layout, VocLayout):
        layout = VocLayout(layout, mask_dir=mask_dir or "SegmentationClass")
    elif mask_dir is not None:
        layout = VocLayout(layout.root, mask_dir=mask_dir)
    labels = {}
    for image_id in ids:
        path = layout.mask_path(image_id)
        classes = present_classes(read_label(path, num_classes), num_classes)
        if not classes:
            raise DatasetError(f"{path}: label of image {image_id!r} contains no object class")
        labels[image_id] = classes
    return labels


def _resize(array: np.ndarray, size_hw: tuple[int, int], interpolation: int) -> np.ndarray:
    if array.shape[:2] == tuple(size_hw):
        return array
    return cv2.resize(array, (size_hw[1], size_hw[0]), interpolation=interpolation)


class ClassificationDataset(Dataset):
    """Images, multi-hot image labels and saliency maps for training the classifier.

    Sample: {"id": str, "image": float (3, S, S) ImageNet-normalised, "label": float (C,)
    multi-hot (index c-1 for class c), "saliency": float (1, S, S) in [0, 1]}.
    Saliency maps are read from `saliency_dir/{id}.png`. With `train`, colour jitter
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
        self.saliency_dir = Path(saliency_dir)
        self.input_size = int(input_size)
        self.train = train
        brightness, contrast, saturation, hue = color_jitter
        self.jitter = v2.ColorJitter(brightness, contrast, saturation, hue)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> dict:
        image_id = self.ids[index]
        size = (self.input_size, self.input_size)
        image = read_image(self.layout.image_path(image_id))
        saliency = load_saliency(self.saliency_dir / f"{image_id}.png", image.shape[:2])
        image = torch.from_numpy(_resize(image, size, cv2.INTER_LINEAR)).permute(2, 0, 1)
        saliency = torch.from_numpy(_resize(saliency, size, cv2.INTER_LINEAR))[None]
        if self.train:
            image = self.jitter(image.contiguous())
            if torch.rand(()) < 0.5:
                image, saliency = image.flip(-1), saliency.flip(-1)
        label = torch.zeros(self.num_classes)
        label[[c - 1 for c in self.labels[image_id]]] = 1.0
        return {
            "id": image_id,
            "image": normalize(image),
            "label": label,
            "saliency": saliency.clamp(0.0, 1.0).contiguous(),
        }


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

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> dict:
        image_id = self.ids[index]
        image = read_image(self.layout.image_path(image_id))
        label_path = self.label_dir / f"{image_id}.png"
        label = read_label(label_path, self.num_classes)
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
