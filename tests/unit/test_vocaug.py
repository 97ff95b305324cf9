"""VOC 2012 + SBD fetched from a local HTTP server and built into SegmentationClassAug and
train_aug; SBD .mat conversion; the pinned defaults of the real archives."""

from pathlib import Path

import numpy as np
import pytest
import scipy.io
import yaml
from PIL import Image

from i2crc_core.data.downloads import ChecksumMismatch
from i2crc_core.data.vocaug import fetch_voc_aug, sbd_mask, train_aug_ids
from i2crc_core.infra.config import SCHEMA_PATH
from i2crc_core.infra.errors import FetchError
from tests.helpers.voc_sbd_archives import (
    NOT_IN_VOC_IMAGES,
    SBD_SPLITS,
    TRAIN_AUG,
    VOC_SPLITS,
    md5,
    voc_mask,
    write_sbd_tgz,
    write_voc_tar,
)
from tests.helpers.voc_sbd_archives import sbd_mask as sbd_truth


@pytest.fixture
def archives(served):
    """The two archives served over HTTP: kwargs of fetch_voc_aug for them, and the hit log."""
    www, base, hits = served
    voc = write_voc_tar(www / "VOCtrainval_11-May-2012.tar")
    sbd = write_sbd_tgz(www / "benchmark.tgz")
    specs = {
        "voc": {"url": f"{base}/{voc.name}", "md5": md5(voc), "sha256": None},
        "sbd": {"url": f"{base}/{sbd.name}", "md5": md5(sbd), "sha256": None},
    }
    return specs, hits


TRAIN_AUG_COUNT = len(TRAIN_AUG)


def _fetch(tmp_path, specs, count=TRAIN_AUG_COUNT):
    return fetch_voc_aug(
        root=tmp_path / "data" / "VOCdevkit" / "VOC2012",
        download_dir=tmp_path / "data" / "downloads",
        train_aug_count=count,
        **specs,
    )


def test_builds_segmentation_class_aug_and_train_aug(tmp_path, archives):
    specs, hits = archives
    root = tmp_path / "data" / "VOCdevkit" / "VOC2012"
    for stale in (".VOC2012.k1ll3d.tmp/JPEGImages", "..VOC2012.k1ll3d.tmp.x.raw/VOCdevkit"):
        (root.parent / stale).mkdir(parents=True)  # left by a build that was killed
    assert _fetch(tmp_path, specs) == TRAIN_AUG
    assert (root / "ImageSets/Segmentation/train_aug.txt").read_text().split() == TRAIN_AUG
    assert (root / "ImageSets/Segmentation/val.txt").read_text().split() == VOC_SPLITS["val"]
    annotated = set(
        VOC_SPLITS["train"] + VOC_SPLITS["val"] + SBD_SPLITS["train"] + SBD_SPLITS["val"]
    )
    masks = root / "SegmentationClassAug"
    assert sorted(p.stem for p in masks.iterdir()) == sorted(annotated)
    for image_id in annotated:
        with Image.open(masks / f"{image_id}.png") as image:
            assert image.mode == "P"
            label = np.asarray(image)
        in_voc = image_id in VOC_SPLITS["train"] + VOC_SPLITS["val"]
        # VOC's own mask wins where both annotate (2007_000032, 2007_000039, 2008_000002).
        np.testing.assert_array_equal(label, voc_mask(image_id) if in_voc else sbd_truth(image_id))
    assert set(np.unique(np.asarray(Image.open(masks / "2008_000003.png")))) == {0, 11, 20}
    # The image VOC lacks comes from SBD's img/; VOC's tree is kept whole.
    assert (root / "JPEGImages" / f"{NOT_IN_VOC_IMAGES}.jpg").is_file()
    assert all((root / "JPEGImages" / f"{i}.jpg").is_file() for i in TRAIN_AUG + VOC_SPLITS["val"])
    assert sorted(p.name for p in root.iterdir()) == [
        "Annotations",
        "ImageSets",
        "JPEGImages",
        "SegmentationClass",
        "SegmentationClassAug",
    ]
    assert sorted(p.name for p in root.parent.iterdir()) == ["VOC2012"]  # no staging left
    downloads = tmp_path / "data" / "downloads"
    assert sorted(p.name for p in downloads.iterdir()) == [
        "VOCtrainval_11-May-2012.tar",
        "benchmark.tgz",
    ]
    # A rebuild reuses the verified downloads.
    _fetch(tmp_path, specs)
    assert sorted(hits) == ["/VOCtrainval_11-May-2012.tar", "/benchmark.tgz"]


def test_count_mismatch_is_one_line_and_builds_nothing(tmp_path, archives):
    specs, _ = archives
    with pytest.raises(FetchError) as caught:
        _fetch(tmp_path, specs, count=10582)
    message = str(caught.value)
    assert "train_aug" in message and "has 6 images, expected 10582" in message
    assert "benchmark.tgz" in message and "\n" not in message
    assert not list((tmp_path / "data" / "VOCdevkit").iterdir())  # no staging folder left


def test_bad_checksum_names_the_url_and_keeps_nothing(tmp_path, archives):
    specs, _ = archives
    specs["sbd"]["md5"] = "0" * 32
    with pytest.raises(
        ChecksumMismatch, match=f"{specs['sbd']['url']}: md5 is [0-9a-f]{{32}}, expected 0{{32}}"
    ):
        _fetch(tmp_path, specs)
    assert sorted(p.name for p in (tmp_path / "data" / "downloads").iterdir()) == [
        "VOCtrainval_11-May-2012.tar"
    ]
    assert not (tmp_path / "data" / "VOCdevkit").exists()


def test_missing_member_is_named(tmp_path, served):
    www, base, _ = served
    voc = write_voc_tar(www / "VOCtrainval_11-May-2012.tar")
    sbd = write_sbd_tgz(www / "benchmark.tgz", skip_mat="2008_000004")
    specs = {
        name: {"url": f"{base}/{path.name}", "md5": None, "sha256": None}
        for name, path in (("voc", voc), ("sbd", sbd))
    }
    with pytest.raises(FetchError) as caught:
        _fetch(tmp_path, specs)
    assert str(caught.value) == (
        f"{tmp_path / 'data' / 'downloads' / 'benchmark.tgz'}: no member "
        "benchmark_RELEASE/dataset/cls/2008_000004.mat (listed in an SBD split)"
    )
    assert not list((tmp_path / "data" / "VOCdevkit").iterdir())
    # An archive of another layout: the missing top folder is named.
    write_voc_tar(www / "VOCtrainval_11-May-2012.tar", prefix="VOC2012")
    (tmp_path / "data" / "downloads" / "VOCtrainval_11-May-2012.tar").unlink()
    with pytest.raises(FetchError, match="no file under member prefix 'VOCdevkit/VOC2012'"):
        _fetch(tmp_path, specs)


def test_sbd_mask_reads_the_gtcls_struct(tmp_path):
    mask = np.arange(12, dtype=np.uint8).reshape(3, 4)
    scipy.io.savemat(tmp_path / "a.mat", {"GTcls": {"Segmentation": mask, "Boundaries": 0}})
    result = sbd_mask(tmp_path / "a.mat")
    assert result.dtype == np.uint8
    np.testing.assert_array_equal(result, mask)
    scipy.io.savemat(tmp_path / "inst.mat", {"GTinst": {"Segmentation": mask}})
    with pytest.raises(FetchError, match="inst.mat: has no GTcls.Segmentation"):
        sbd_mask(tmp_path / "inst.mat")
    (tmp_path / "junk.mat").write_bytes(b"not a mat file at all")
    with pytest.raises(FetchError, match="junk.mat: unreadable"):
        sbd_mask(tmp_path / "junk.mat")
    whole = (tmp_path / "a.mat").read_bytes()
    (tmp_path / "cut.mat").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(FetchError, match="cut.mat: unreadable"):
        sbd_mask(tmp_path / "cut.mat")


def test_train_aug_ids_is_the_set_algebra():
    assert train_aug_ids(["a", "b"], ["c", "d"], ["b", "c", "e"], ["f", "a"]) == [
        "a",
        "b",
        "e",
        "f",
    ]


def test_real_archives_are_pinned_in_the_schema():
    """The defaults are the public archives with their published md5s, and the 10,582 check."""
    dataset = yaml.safe_load(Path(SCHEMA_PATH).read_text())["properties"]["dataset"]["properties"]
    archives = dataset["archives"]["properties"]
    voc, sbd = (archives[name]["properties"] for name in ("voc", "sbd"))
    assert voc["url"]["default"] == (
        "http://host.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar"
    )
    assert voc["md5"]["default"] == "6cd6e144f989b92b3379bac3b3de84fd"
    assert sbd["url"]["default"] == (
        "http://www.eecs.berkeley.edu/Research/Projects/CS/vision/"
        "grouping/semantic_contours/benchmark.tgz"
    )
    assert sbd["md5"]["default"] == "82b4d87ceb2ed10f6038a1cba92111cb"
    assert dataset["train_aug_count"]["default"] == 10582
    assert dataset["fetch"]["default"] is False
