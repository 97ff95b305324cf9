"""VOC2012-layout datasets on disk: paths, split lists, image-level label lists, validation.

Layout under a root: `{image_dir}/{id}.jpg`, `{mask_dir}/{id}.png`, `{split_dir}/{split}.txt`.
An id is a whole stripped line of a split list, so ids with spaces or non-ASCII characters
work; all text files are UTF-8. An id names a file directly inside each folder, which is checked
where ids are read (`check_image_id`). Kept free of torch and OpenCV: the CPU stages that only
read a manifest or labels start in a fraction of a second.
"""

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from ..infra.errors import DatasetError
from ..infra.fileio import image_header, read_image, read_label, write_text

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


def _read_lines(path: Path, what: str) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DatasetError(f"{path}: {what} is missing") from None
    except UnicodeDecodeError as error:
        raise DatasetError(f"{path}: {what} is not UTF-8 text ({error})") from None


# What an image id may not contain: with them, '<folder>/' + id + '.jpg' names another folder's
# file ('/etc/x', '../../x', 'a\\..\\x' where a backslash separates), or no file (NUL).
_ID_FORBIDDEN = ("/", "\\", "\0")


def check_image_id(image_id: str, where: str) -> None:
    """DatasetError naming `where` (a file and line) unless `image_id` names a file directly
    inside a folder. Stages read `<folder>/<id>.jpg` and write `<folder>/<id>.png`: an id that
    escapes the folder would have them read, and write over, files anywhere. Ids are stripped
    where they are read, so none starts or ends with whitespace."""
    found = [char for char in _ID_FORBIDDEN if char in image_id]
    if found:
        problem = f"contains {found[0]!r}"
    elif image_id in (".", ".."):
        problem = "is '.' or '..'"
    else:
        return
    raise DatasetError(
        f"{where}: image id {image_id!r} {problem}; ids name files directly inside the "
        "dataset's and the run's folders (no '/', '\\' or NUL, not '.' or '..')"
    )


def read_split(path) -> list[str]:
    """Image ids of a split list, in file order (one id per line; blank lines skipped)."""
    path = Path(path)
    ids: list[str] = []
    first_line: dict[str, int] = {}
    for number, line in enumerate(_read_lines(path, "split list"), start=1):
        image_id = line.strip()
        if not image_id:
            continue
        check_image_id(image_id, f"{path}, line {number}")
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
        check_image_id(image_id, where)
        try:
            classes = sorted({int(token) for token in tokens})
        except ValueError:
            raise DatasetError(f"{where}: class indices must be integers, got {line!r}") from None
        if not classes:
            raise DatasetError(f"{where}: image {image_id!r} has no object class")
        bad = [c for c in classes if not 0 <= c < num_classes]
        if bad:
            raise DatasetError(
                f"{where}: class index {bad[0]} is outside 0..{num_classes - 1} "
                "(0-based object classes)"
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
    write_text(path, "".join(line + "\n" for line in lines))


# VOC2012's own folders, which the synthetic benchmark writes too.
VOC_DIRS = {
    "image_dir": "JPEGImages",
    "mask_dir": "SegmentationClass",
    "split_dir": "ImageSets/Segmentation",
}


class VocLayout:
    """Paths of a VOC-layout dataset under `root`."""

    def __init__(
        self,
        root,
        image_dir: str = VOC_DIRS["image_dir"],
        mask_dir: str = VOC_DIRS["mask_dir"],
        split_dir: str = VOC_DIRS["split_dir"],
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

    def image_header(self, image_id: str) -> tuple[tuple[int, int], int]:
        """((H, W), EXIF orientation) of an image from its header (fileio.image_header)."""
        return image_header(
            self.image_path(image_id), missing=f"image of listed id {image_id!r} is missing"
        )

    def image_size(self, image_id: str) -> tuple[int, int]:
        """(H, W) of an image's stored pixels, from its header only."""
        return self.image_header(image_id)[0]

    def read_image(self, image_id: str) -> np.ndarray:
        """The image's stored pixels, RGB uint8 (H, W, 3): the masks are drawn on them."""
        return read_image(self.image_path(image_id))

    def validate(self, ids: Iterable[str], num_classes: int) -> list[str]:
        """Check every listed image and mask exists, is readable, valid, and of equal size.
        Returns the ids of the images that carry an EXIF orientation (a viewer shows them turned
        or mirrored; the masks, like VOC's and COCO's, are drawn on their stored pixels)."""
        turned = []
        for image_id in ids:
            image_size, orientation = self.image_header(image_id)
            if orientation != 1:
                turned.append(image_id)
            mask_path = self.mask_path(image_id)
            if not mask_path.is_file():
                raise DatasetError(f"{mask_path}: label of listed id {image_id!r} is missing")
            mask = read_label(mask_path, num_classes)
            if mask.shape != image_size:
                raise DatasetError(
                    f"{mask_path}: label size {mask.shape[1]}x{mask.shape[0]} differs from image "
                    f"size {image_size[1]}x{image_size[0]} of {self.image_path(image_id)}"
                )
        return turned


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
        layout = VocLayout(layout, mask_dir=mask_dir or VOC_DIRS["mask_dir"])
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
