"""Stages: validate a VOC-layout dataset and write its manifest and image-level label lists
(`run`); choose the training images that label metrics score (`label_split`)."""

import logging
from pathlib import Path

from ..data.layout import (
    COCO_CLASSES,
    VOC_CLASSES,
    VocLayout,
    image_labels_from_masks,
    read_image_labels,
    read_split,
    write_image_labels,
)
from ..data.manifest import ROLES, LabelSplit, Manifest
from ..infra.errors import DatasetError

log = logging.getLogger(__name__)


def class_names(root: Path, num_classes: int) -> list[str]:
    """Names from the root's class_names.txt, else VOC's (20) or COCO's (80), else numbered."""
    names_file = root / "class_names.txt"
    if names_file.exists():
        names = [
            line.strip()
            for line in names_file.read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]
        if len(names) != num_classes:
            raise DatasetError(
                f"{names_file}: lists {len(names)} classes but dataset.num_classes is {num_classes}"
            )
        return names
    for known in (VOC_CLASSES, COCO_CLASSES):
        if num_classes == len(known):
            return list(known)
    return [f"class{index}" for index in range(1, num_classes + 1)]


def run(*, root, layout, splits, num_classes, image_labels, manifest_path, label_lists):
    voc = VocLayout(root, **layout)
    listed_labels = (
        None if image_labels == "masks" else read_image_labels(image_labels, num_classes)
    )
    ids = {role: read_split(voc.split_path(splits[role])) for role in ROLES}
    training = set(ids["train"])
    shared = [image_id for image_id in ids["val"] if image_id in training]
    if shared:
        raise DatasetError(
            f"{voc.split_path(splits['val'])}: {len(shared)} of the {len(ids['val'])} evaluation "
            f"ids are also training images of split '{splits['train']}' (first: {shared[0]!r}); "
            "scores on them would measure what the models were trained on"
        )
    labels, turned = {}, []
    for role in ROLES:
        turned += voc.validate(ids[role], num_classes)
        if listed_labels is None:
            labels[role] = image_labels_from_masks(voc, ids[role], num_classes)
        else:
            missing = [image_id for image_id in ids[role] if image_id not in listed_labels]
            if missing:
                raise DatasetError(
                    f"{image_labels}: no image-level label for {len(missing)} ids of split "
                    f"'{splits[role]}' (first: {missing[0]!r})"
                )
            labels[role] = {image_id: listed_labels[image_id] for image_id in ids[role]}
        write_image_labels(label_lists[role], labels[role])
        log.info("split %s (%s): %d images", splits[role], role, len(ids[role]))
    if turned:
        log.warning(
            "%d of %d images carry an EXIF orientation (first: %r): the pipeline uses their "
            "stored pixels, on which the masks are drawn, while a viewer shows them turned or "
            "mirrored",
            len(turned),
            sum(len(ids[role]) for role in ROLES),
            turned[0],
        )
    Manifest(
        root=str(Path(root).resolve()),
        num_classes=num_classes,
        class_names=class_names(Path(root), num_classes),
        ids=ids,
        image_labels={role: {k: list(v) for k, v in labels[role].items()} for role in ROLES},
        splits={role: splits[role] for role in ROLES},
        **layout,
    ).save(manifest_path)


def label_split(*, manifest_path, split, out_path):
    """The training images that label metrics score: those of the split list `split` (in the
    dataset's split folder), which must all be training images; None: every training image."""
    manifest = Manifest.load(manifest_path)
    train_ids = manifest.ids["train"]
    if split is None:
        chosen = LabelSplit(manifest.split_name("train"), list(train_ids))
    else:
        path = manifest.layout().split_path(split)
        ids = read_split(path)
        # The training images were validated by `run`: a subset needs no second check.
        known = set(train_ids)
        outside = [image_id for image_id in ids if image_id not in known]
        if outside:
            raise DatasetError(
                f"{path}: evaluation.label_split '{split}' lists {len(outside)} of {len(ids)} ids "
                f"outside the training images of split '{manifest.split_name('train')}' "
                f"(first: {outside[0]!r})"
            )
        chosen = LabelSplit(split, ids)
    log.info(
        "label metrics on split %s: %d of %d training images",
        chosen.split,
        len(chosen.ids),
        len(train_ids),
    )
    chosen.save(out_path)
