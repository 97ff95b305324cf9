import os

import pytest

from i2crc_core.data.data_fingerprint import dataset_fingerprint, folder_fingerprint

SPLITS = {"train": "train", "val": "val"}


@pytest.fixture
def root(tmp_path):
    """A VOC-layout root with files of the right names (their contents are never read)."""
    root = tmp_path / "voc"
    for role, ids in (("train", ["a", "b"]), ("val", ["c"])):
        split = root / "ImageSets/Segmentation" / f"{role}.txt"
        split.parent.mkdir(parents=True, exist_ok=True)
        split.write_text("\n".join(ids) + "\n")
        for image_id in ids:
            for folder, suffix in (("JPEGImages", "jpg"), ("SegmentationClass", "png")):
                path = root / folder / f"{image_id}.{suffix}"
                path.parent.mkdir(exist_ok=True)
                path.write_bytes(b"x")
    return root


def fingerprint(root, image_labels="masks"):
    return dataset_fingerprint(root, splits=SPLITS, image_labels=image_labels)


def edit(path, content=b"y"):
    """Rewrite a file so that its modification time surely moves on."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_bytes(content)
    os.utime(path, ns=(before + 10**9, before + 10**9))


def test_an_untouched_dataset_keeps_its_fingerprint(root):
    assert fingerprint(root) == fingerprint(root)


@pytest.mark.parametrize(
    "relative",
    [
        "JPEGImages/a.jpg",
        "SegmentationClass/c.png",
        "ImageSets/Segmentation/val.txt",
    ],
)
def test_editing_a_file_the_run_reads_changes_it(root, relative):
    before = fingerprint(root)
    edit(root / relative, b"x")  # same size: the modification time alone must tell
    assert fingerprint(root) != before


def test_an_id_appended_to_a_split_list_changes_it(root):
    before = fingerprint(root)
    split = root / "ImageSets/Segmentation/train.txt"
    split.write_text(split.read_text() + "d\n")
    assert fingerprint(root) != before


def test_removing_a_listed_file_changes_it_and_the_stage_is_left_to_say_why(root):
    before = fingerprint(root)
    (root / "SegmentationClass/b.png").unlink()
    assert fingerprint(root) != before


def test_files_the_run_does_not_read_leave_it_alone(root):
    before = fingerprint(root)
    edit(root / "JPEGImages/unlisted.jpg")
    edit(root / "ImageSets/Segmentation/trainval.txt")
    assert fingerprint(root) == before


def test_an_image_label_list_counts_when_it_is_used(root, tmp_path):
    labels = tmp_path / "train_cls.txt"
    labels.write_text("a 0\n")
    before = fingerprint(root, image_labels=str(labels))
    edit(labels, b"a 1\n")
    assert fingerprint(root, image_labels=str(labels)) != before


def test_a_missing_root_has_a_fingerprint_and_raises_nothing(tmp_path):
    assert fingerprint(tmp_path / "absent") == fingerprint(tmp_path / "absent")


def test_folder_fingerprint_sees_an_edited_added_or_removed_map(tmp_path):
    folder = tmp_path / "maps"
    folder.mkdir()
    edit(folder / "a.png")
    fingerprints = [folder_fingerprint(folder)]
    edit(folder / "a.png", b"z")
    fingerprints.append(folder_fingerprint(folder))
    edit(folder / "b.png")
    fingerprints.append(folder_fingerprint(folder))
    (folder / "a.png").unlink()
    fingerprints.append(folder_fingerprint(folder))
    assert len(set(fingerprints)) == 4
    assert folder_fingerprint(tmp_path / "absent") == folder_fingerprint(tmp_path / "absent")
