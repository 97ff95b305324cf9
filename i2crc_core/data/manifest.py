"""The validated description of a dataset that every stage after `prepare_dataset` reads.

One JSON file holds where the VOC-layout root is, the class names, and for each role
("train", "val") the split list's name, the image ids in split order and their image-level
labels (1-based classes). Stages never re-read split lists, so what was validated once is what
they use.

A `LabelSplit` is the subset of the training images that label metrics score
(`evaluation.label_split`, e.g. VOC's 1,464 `train` images of the 10,582 of `train_aug`). It is
a file of its own, not part of the manifest: changing it must rerun the evaluations only, not
everything that reads the manifest.
"""

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from ..infra.errors import DatasetError
from ..infra.fileio import write_json
from .layout import VocLayout

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
    # role -> name of its split list; None where a manifest is made by hand (tests, benchmarks)
    splits: dict[str, str] | None = None

    def layout(self) -> VocLayout:
        return VocLayout(
            self.root, image_dir=self.image_dir, mask_dir=self.mask_dir, split_dir=self.split_dir
        )

    def labels(self, role: str) -> dict[str, tuple[int, ...]]:
        return {image_id: tuple(classes) for image_id, classes in self.image_labels[role].items()}

    def split_name(self, role: str) -> str:
        return self.splits[role] if self.splits else role

    def save(self, path) -> None:
        _save(self, path)

    @classmethod
    def load(cls, path) -> "Manifest":
        return _load(cls, path, "dataset manifest")


@dataclass(frozen=True)
class LabelSplit:
    """The training images that the label metrics score: `ids` of the split list `split`."""

    split: str
    ids: list[str]

    def save(self, path) -> None:
        _save(self, path)

    @classmethod
    def load(cls, path) -> "LabelSplit":
        return _load(cls, path, "label split")


def _save(record, path) -> None:
    write_json(path, asdict(record))


def _load(cls, path, what: str):
    path = Path(path)
    try:
        return cls(**json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise DatasetError(f"{path}: {what} is missing") from None
    except (json.JSONDecodeError, TypeError) as error:
        raise DatasetError(f"{path}: {what} is corrupt ({error})") from None
