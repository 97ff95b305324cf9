"""The validated description of a dataset that every stage after `prepare_dataset` reads.

One JSON file holds where the VOC-layout root is, the class names, and for each role
("train", "val") the image ids in split order and their image-level labels (1-based classes).
Stages never re-read split lists, so what was validated once is what they use.
"""

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from .layout import VocLayout
from .errors import DatasetError
from .fileio import atomic_path

ROLES = ("train", "val")


@dataclass(frozen=True)
class Manifest:
    root: str
    image_dir: str
    mask_dir: str
    split_dir: str
    num_classes: int
    class_names: list[str]
    ids: dict[str, list[str]]
    image_labels: dict[str, dict[str, list[int]]]

    def layout(self) -> VocLayout:
        return VocLayout(
            self.root, image_dir=self.image_dir, mask_dir=self.mask_dir, split_dir=self.split_dir
        )

    def labels(self, role: str) -> dict[str, tuple[int, ...]]:
        return {image_id: tuple(classes) for image_id, classes in self.image_labels[role].items()}

    def save(self, path) -> None:
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(asdict(self), ensure_ascii=False, indent=1), encoding="utf-8")

    @classmethod
    def load(cls, path) -> "Manifest":
        path = Path(path)
        try:
            return cls(**json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise DatasetError(f"{path}: dataset manifest is missing") from None
        except (json.JSONDecodeError, TypeError) as error:
            raise DatasetError(f"{path}: dataset manifest is corrupt ({error})") from None
