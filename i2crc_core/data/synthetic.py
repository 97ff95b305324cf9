"""The built-in synthetic benchmark (docs/method.md §9), written in exact VOC2012 layout.

It reproduces the phenomenon I2CRC addresses (paper Fig. 1): every object is a small
class-specific **discriminative part** (its shape and colour identify the class) at one end of
a larger **body** whose appearance (an elongated ellipse with a striped, noisy texture in one
brown/grey colour family) is the same for every class. A classifier needs only the part, so a
plain CAM covers only the part, while the ground-truth mask (and the saliency) cover body and
part. The design was fixed before any method was run on it and is not tuned to favour one.

Images: smooth low-frequency colour noise plus random clutter blobs and strokes of random
colours as background; 1..`max_classes_per_image` object classes per image (a share
`simple_fraction` of images has exactly one, with 1..`max_instances_per_class` instances);
random size, orientation and position, with overlap limited so each object, and always its
part, stays visible.

Sizes (`body_length`, `part_size`) are in pixels at a 128-pixel image and scale linearly with
`image_size`, so changing the resolution keeps the content the same.

Deterministic: image `i` of split `s` is drawn from numpy's generator seeded by
(seed, split, i); which images are simple is a per-split permutation seeded by (seed, split).
The same arguments give byte-identical files.
"""

import colorsys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..infra.fileio import atomic_directory, write_image, write_label
from .layout import VocLayout

SPLITS = ("train", "val")
REFERENCE_SIZE = 128
PART_SHAPES = (
    "disc", "square", "triangle", "cross", "ring",
    "diamond", "star", "hexagon", "crescent", "bars",
)  # fmt: skip
MAX_OVERLAP = 0.15
PLACEMENT_TRIES = 60


@dataclass(frozen=True)
class ShapeParameters:
    """Everything about the drawing of one image, in pixels at the actual image size."""

    image_size: int
    num_classes: int
    max_classes_per_image: int
    max_instances_per_class: int
    body_length: tuple[float, float]
    body_width_ratio: tuple[float, float]
    part_size: tuple[float, float]
    clutter_blobs: tuple[int, int]


HUE_NAMES = (
    "red", "orange", "yellow", "chartreuse", "green", "spring",
    "cyan", "azure", "blue", "violet", "magenta", "rose",
)  # fmt: skip


def class_names(num_classes: int) -> list[str]:
    """`{colour}_{shape}` names of the classes' discriminative parts (unique)."""
    names: list[str] = []
    for class_id in range(1, num_classes + 1):
        hue = _class_hue(class_id, num_classes)
        name = f"{HUE_NAMES[round(hue * len(HUE_NAMES)) % len(HUE_NAMES)]}_{_class_shape(class_id)}"
        names.append(name if name not in names else f"{name}_{class_id}")
    return names


def named_colour(name: str) -> np.ndarray | None:
    """RGB (float, 0..255) of the hue that a `{colour}_{shape}` class name names (the hue
    its parts are drawn with, to the nearest of HUE_NAMES); None for any other name."""
    hue_name = name.split("_", 1)[0]
    if "_" not in name or hue_name not in HUE_NAMES:
        return None
    hue = HUE_NAMES.index(hue_name) / len(HUE_NAMES)
    return np.array(colorsys.hsv_to_rgb(hue, 0.85, 0.95), dtype=np.float32) * 255.0


def _class_shape(class_id: int) -> str:
    return PART_SHAPES[(class_id - 1) % len(PART_SHAPES)]


def _class_hue(class_id: int, num_classes: int) -> float:
    return (class_id - 1) / num_classes


def _class_colour(class_id: int, num_classes: int) -> np.ndarray:
    red, green, blue = colorsys.hsv_to_rgb(_class_hue(class_id, num_classes), 0.85, 0.95)
    return np.array([red, green, blue], dtype=np.float32) * 255.0


def _part_mask(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Inside test of a part shape in its own frame, coordinates normalised by its radius."""
    rho = np.hypot(u, v)
    phi = np.arctan2(v, u)
    if shape == "disc":
        return rho <= 1.0
    if shape == "square":
        return np.maximum(np.abs(u), np.abs(v)) <= 0.85
    if shape == "triangle":
        angles = np.deg2rad([0.0, 120.0, 240.0])
        return np.all([u * np.cos(a) + v * np.sin(a) <= 0.5 for a in angles], axis=0)
    if shape == "cross":
        return ((np.abs(u) <= 0.33) & (np.abs(v) <= 1.0)) | (
            (np.abs(v) <= 0.33) & (np.abs(u) <= 1.0)
        )
    if shape == "ring":
        return (rho <= 1.0) & (rho >= 0.5)
    if shape == "diamond":
        return np.abs(u) + np.abs(v) <= 1.0
    if shape == "star":
        return rho <= 0.6 + 0.4 * np.cos(5.0 * phi)
    if shape == "hexagon":
        angles = np.deg2rad([0.0, 60.0, 120.0])
        return np.all([np.abs(u * np.cos(a) + v * np.sin(a)) <= 0.87 for a in angles], axis=0)
    if shape == "crescent":
        return (rho <= 1.0) & ((u - 0.45) ** 2 + v**2 > 0.75**2)
    if shape == "bars":
        return (np.abs(u) <= 1.0) & (np.abs(v) >= 0.3) & (np.abs(v) <= 0.9)
    raise ValueError(f"unknown part shape {shape!r}")


def _smooth_noise(rng: np.random.Generator, size: int, cells: int, channels: int) -> np.ndarray:
    """Low-frequency noise: a coarse random grid upsampled bicubically to size x size."""
    coarse = rng.random((cells, cells, channels), dtype=np.float32)
    return cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC).reshape(
        size, size, channels
    )


def _background(rng: np.random.Generator, params: ShapeParameters, grid) -> np.ndarray:
    """Smooth colour noise with clutter blobs and strokes of random colours (no body texture)."""
    size = params.image_size
    rows, cols = grid
    base = rng.uniform(60, 190, size=3).astype(np.float32)
    image = base + 70.0 * (_smooth_noise(rng, size, 4, 3) - 0.5)
    image += 30.0 * (_smooth_noise(rng, size, 12, 3) - 0.5)
    scale = size / REFERENCE_SIZE
    for _ in range(rng.integers(params.clutter_blobs[0], params.clutter_blobs[1] + 1)):
        colour = rng.uniform(0, 255, size=3).astype(np.float32)
        centre_r, centre_c = rng.uniform(0, size, size=2)
        angle = rng.uniform(0, np.pi)
        u = (cols - centre_c) * np.cos(angle) + (rows - centre_r) * np.sin(angle)
        v = -(cols - centre_c) * np.sin(angle) + (rows - centre_r) * np.cos(angle)
        if rng.random() < 0.5:
            radius_u, radius_v = rng.uniform(3, 14, size=2) * scale
            inside = (u / radius_u) ** 2 + (v / radius_v) ** 2 <= 1.0
        else:
            half_length = rng.uniform(8, 30) * scale
            half_width = rng.uniform(1, 2.5) * scale
            bend = rng.uniform(-0.03, 0.03) / scale
            inside = (np.abs(u) <= half_length) & (np.abs(v - bend * u**2) <= half_width)
        image[inside] = 0.35 * image[inside] + 0.65 * colour
    return image


def _draw_object(rng: np.random.Generator, params: ShapeParameters, class_id: int, grid):
    """Random pose of one object: (body mask, part mask, coordinate along the body, in-image).

    In-image means the whole part and at least 85 % of the body lie inside the image.
    """
    size = params.image_size
    scale = size / REFERENCE_SIZE
    rows, cols = grid
    length = rng.uniform(*params.body_length) * scale
    width = length * rng.uniform(*params.body_width_ratio)
    part_radius = rng.uniform(*params.part_size) * scale / 2.0
    angle = rng.uniform(0, 2 * np.pi)
    centre_r, centre_c = rng.uniform(0.1 * size, 0.9 * size, size=2)
    direction_c, direction_r = np.cos(angle), np.sin(angle)
    u = (cols - centre_c) * direction_c + (rows - centre_r) * direction_r
    v = -(cols - centre_c) * direction_r + (rows - centre_r) * direction_c
    body = (u / (length / 2)) ** 2 + (v / (width / 2)) ** 2 <= 1.0
    body_inside = np.count_nonzero(body) / (np.pi * length * width / 4)
    # The part sits on the body's end, its centre slightly inside so the two touch.
    offset = length / 2 - 0.4 * part_radius
    part_r, part_c = centre_r + offset * direction_r, centre_c + offset * direction_c
    part_inside = bool(min(part_r, part_c, size - 1 - part_r, size - 1 - part_c) >= part_radius)
    part_u = (u - offset) / part_radius
    part_v = v / part_radius
    part_angle = rng.uniform(0, 2 * np.pi)
    rotated_u = part_u * np.cos(part_angle) + part_v * np.sin(part_angle)
    rotated_v = -part_u * np.sin(part_angle) + part_v * np.cos(part_angle)
    part = _part_mask(_class_shape(class_id), rotated_u, rotated_v)
    body &= ~part
    return body, part, u, part_inside and body_inside >= 0.85


def _fits(footprint, occupied, parts_so_far, objects) -> bool:
    """An object is placed only if it hides little of the others and none of their parts."""
    area = np.count_nonzero(footprint)
    if np.count_nonzero(footprint & occupied) > MAX_OVERLAP * area:
        return False
    if np.any(footprint & parts_so_far):
        return False
    return all(
        np.count_nonzero(visible & footprint) <= MAX_OVERLAP * np.count_nonzero(visible)
        for visible in objects
    )


def _image_classes(rng: np.random.Generator, params: ShapeParameters, simple: bool) -> list[int]:
    """Class id per object instance, first instances of every class first."""
    if simple:
        count = 1
    else:
        count = int(rng.integers(2, params.max_classes_per_image + 1))
    classes = [int(c) + 1 for c in rng.choice(params.num_classes, size=count, replace=False)]
    extra = [
        c
        for c in classes
        for _ in range(int(rng.integers(1, params.max_instances_per_class + 1)) - 1)
    ]
    return classes + extra


def render_image(rng: np.random.Generator, params: ShapeParameters, simple: bool):
    """Draw one image: (RGB uint8 (S, S, 3), label uint8 (S, S), per-object stats)."""
    size = params.image_size
    grid = np.mgrid[0:size, 0:size].astype(np.float32)
    image = _background(rng, params, grid)
    label = np.zeros((size, size), dtype=np.uint8)
    occupied = np.zeros((size, size), dtype=bool)
    parts_so_far = np.zeros((size, size), dtype=bool)
    object_masks: list[np.ndarray] = []
    object_parts: list[np.ndarray] = []
    body_base = np.array([150.0, 120.0, 95.0], dtype=np.float32)
    stripe_period = rng.uniform(5.0, 9.0) * size / REFERENCE_SIZE
    for class_id in _image_classes(rng, params, simple):
        # An empty image would have no label, so the first object is retried until it fits.
        for _ in range(PLACEMENT_TRIES if object_masks else 100 * PLACEMENT_TRIES):
            body, part, along, in_image = _draw_object(rng, params, class_id, grid)
            footprint = body | part
            if in_image and _fits(footprint, occupied, parts_so_far, object_masks):
                break
        else:
            continue
        # Shared body appearance: one colour family, stripes across the long axis, noise.
        tint = body_base + rng.uniform(-20, 20, size=3).astype(np.float32)
        stripes = 1.0 + 0.25 * np.sin(
            2 * np.pi * along[body] / stripe_period + rng.uniform(0, 2 * np.pi)
        )
        image[body] = tint * stripes[:, None] + rng.normal(0, 10, size=(np.count_nonzero(body), 3))
        image[part] = _class_colour(class_id, params.num_classes) + rng.normal(
            0, 8, size=(np.count_nonzero(part), 3)
        )
        label[footprint] = class_id
        object_masks = [mask & ~footprint for mask in object_masks]
        object_masks.append(footprint)
        object_parts = [mask & ~footprint for mask in object_parts]
        object_parts.append(part)
        occupied |= footprint
        parts_so_far |= part
    image += rng.normal(0, 4, size=image.shape).astype(np.float32)
    image = cv2.GaussianBlur(image, (0, 0), sigmaX=0.6, sigmaY=0.6)
    objects = [
        (np.count_nonzero(mask) / size**2, np.count_nonzero(part) / max(1, np.count_nonzero(mask)))
        for mask, part in zip(object_masks, object_parts)
    ]
    return np.clip(np.round(image), 0, 255).astype(np.uint8), label, objects


def _split_rng(seed: int, split_index: int, image_index: int | None = None) -> np.random.Generator:
    key = [int(seed), split_index] if image_index is None else [int(seed), split_index, image_index]
    return np.random.default_rng(key)


def generate(
    root,
    *,
    seed: int,
    num_classes: int,
    num_train: int,
    num_val: int,
    image_size: int,
    simple_fraction: float,
    max_classes_per_image: int = 3,
    max_instances_per_class: int = 2,
    body_length: tuple[float, float] = (56.0, 100.0),
    body_width_ratio: tuple[float, float] = (0.35, 0.6),
    part_size: tuple[float, float] = (16.0, 24.0),
    clutter_blobs: tuple[int, int] = (3, 8),
) -> dict:
    """Write the benchmark under `root` (replaced if it exists) and return its statistics.

    Layout: JPEGImages/{id}.jpg (quality 95), SegmentationClass/{id}.png (palette),
    ImageSets/Segmentation/{train,val}.txt, class_names.txt; ids `syn_{split}_{index:06d}`.
    Everything is written into a temporary directory beside `root` and renamed at the end,
    so an interrupted run leaves nothing that looks finished.
    """
    if num_classes < 1 or num_train < 1 or num_val < 1:
        raise ValueError("num_classes, num_train and num_val must be positive")
    params = ShapeParameters(
        image_size=int(image_size),
        num_classes=int(num_classes),
        max_classes_per_image=max(1, min(int(max_classes_per_image), int(num_classes))),
        max_instances_per_class=max(1, int(max_instances_per_class)),
        body_length=tuple(map(float, body_length)),
        body_width_ratio=tuple(map(float, body_width_ratio)),
        part_size=tuple(map(float, part_size)),
        clutter_blobs=tuple(map(int, clutter_blobs)),
    )
    with atomic_directory(root) as staging:
        return _write_dataset(
            staging, seed, params, {"train": num_train, "val": num_val}, simple_fraction
        )


def _write_dataset(
    staging: Path, seed: int, params: ShapeParameters, counts: dict, simple_fraction: float
) -> dict:
    layout = VocLayout(staging)
    for folder in (layout.split_dir, layout.image_dir, layout.mask_dir):
        folder.mkdir(parents=True)
    (staging / "class_names.txt").write_text("\n".join(class_names(params.num_classes)) + "\n")
    stats: dict = {"num_classes": params.num_classes, "image_size": params.image_size}
    object_fractions, part_ratios, class_images = (
        [],
        [],
        np.zeros(params.num_classes, dtype=np.int64),
    )
    for split_index, split in enumerate(SPLITS):
        count = counts[split]
        num_simple = round(simple_fraction * count) if params.max_classes_per_image > 1 else count
        simple = np.zeros(count, dtype=bool)
        simple[_split_rng(seed, split_index).permutation(count)[:num_simple]] = True
        ids, simple_images = [], 0
        for index in range(count):
            image_id = f"syn_{split}_{index:06d}"
            image, label, objects = render_image(
                _split_rng(seed, split_index, index), params, bool(simple[index])
            )
            write_image(layout.image_path(image_id), image, quality=95)
            write_label(layout.mask_path(image_id), label)
            present = np.unique(label[label > 0])
            simple_images += len(present) == 1
            class_images[present - 1] += 1
            object_fractions += [fraction for fraction, _ in objects]
            part_ratios += [ratio for _, ratio in objects]
            ids.append(image_id)
        layout.split_path(split).write_text("\n".join(ids) + "\n")
        stats[f"num_{split}"] = count
        stats[f"simple_fraction_{split}"] = simple_images / count
    stats["mean_objects_per_image"] = len(object_fractions) / sum(counts.values())
    stats["mean_object_area_fraction"] = float(np.mean(object_fractions))
    stats["mean_part_object_area_ratio"] = float(np.mean(part_ratios))
    stats["images_per_class"] = class_images.tolist()
    return stats
