"""Asset rules through the real CLI: saliency maps fetched as an archive from a local HTTP
server, VOC 2012 + SBD fetched and built (tiny archives in the real layouts), and the ImageNet
weights link taken from the torchvision cache."""

import hashlib
import json
import os
import tarfile
import zipfile

import pytest
import yaml
from test_presets import voc_project as voc_project_of

from i2crc_core.infra.config import deep_update
from tests.helpers.voc_sbd_archives import TRAIN_AUG, VOC_SPLITS, md5, write_sbd_tgz, write_voc_tar
from tests.helpers.workflow_project import make_project

pytestmark = pytest.mark.pipeline

VGG16_FILE = "vgg16-397923af.pth"  # torchvision's file name for VGG16_Weights.IMAGENET1K_V1


@pytest.fixture
def voc_project(tmp_path, served):
    """A VOC-layout project whose saliency maps are a zip served over HTTP."""
    www, base, _ = served
    archive = www / "saliency_aug.zip"
    _, project = voc_project_of(
        tmp_path, {"train": ["a", "b", "c"], "val": ["d"]}, {"source": "url", "url": "later"}
    )
    with zipfile.ZipFile(archive, "w") as bundle:
        for path in sorted((tmp_path / "saliency").glob("*.png")):
            bundle.write(path, f"saliency_aug/{path.name}")
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    project.write_config(
        deep_update(
            project.config,
            {"saliency": {"url": f"{base}/saliency_aug.zip", "sha256": digest}},
        )
    )
    return project


def test_saliency_archive_is_downloaded_verified_and_used(voc_project):
    voc_project.snakemake("results/saliency/quality.json")
    fetched = voc_project.root / "results" / "saliency" / "fetched"
    assert sorted(p.name for p in fetched.glob("*.png")) == ["a.png", "b.png", "c.png", "d.png"]
    assert len(list((voc_project.root / "results" / "saliency" / "maps").glob("*.png"))) == 3


def test_saliency_archive_with_a_wrong_checksum_leaves_nothing(voc_project):
    wrong = "0" * 64
    voc_project.write_config(deep_update(voc_project.config, {"saliency": {"sha256": wrong}}))
    result = voc_project.snakemake("results/saliency/quality.json", check=False)
    assert result.returncode != 0
    assert f"expected {wrong}" in result.stderr and "i2crc error: " in result.stderr
    assert not (voc_project.root / "results" / "saliency" / "fetched").exists()


def test_voc_and_sbd_are_fetched_built_and_prepared(tmp_path, served):
    www, base, hits = served
    voc = write_voc_tar(www / "VOCtrainval_11-May-2012.tar")
    sbd = write_sbd_tgz(www / "benchmark.tgz")
    project = make_project(tmp_path / "project")
    config = yaml.safe_load((project.root / "config" / "voc12.yaml").read_text())
    config = deep_update(
        config, yaml.safe_load((project.root / "config" / "voc12_fetch.yaml").read_text())
    )
    config = deep_update(
        config,
        {
            "output_dir": "results",
            "dataset": {
                "archives": {
                    "voc": {"url": f"{base}/{voc.name}", "md5": md5(voc)},
                    "sbd": {"url": f"{base}/{sbd.name}", "md5": md5(sbd)},
                },
                "train_aug_count": len(TRAIN_AUG),
            },
        },
    )
    project.write_config(config)
    target = "results/dataset/manifest.json"
    assert project.planned_jobs(target) == {"fetch_voc": 1, "prepare_dataset": 1}
    project.snakemake(target)
    root = project.root / "data" / "VOCdevkit" / "VOC2012"
    assert (root / "ImageSets" / "Segmentation" / "train_aug.txt").read_text().split() == TRAIN_AUG
    manifest = json.loads((project.root / target).read_text())
    assert (
        manifest["root"] == str(root.resolve()) and manifest["mask_dir"] == "SegmentationClassAug"
    )
    assert manifest["ids"] == {"train": TRAIN_AUG, "val": VOC_SPLITS["val"]}
    # Image-level labels follow from the masks: VOC's for 2007_000032, SBD's for 2008_000003.
    assert manifest["image_labels"]["train"]["2007_000032"] == [13]
    assert manifest["image_labels"]["train"]["2008_000003"] == [11, 20]
    assert sorted(p.name for p in (project.root / "data" / "downloads").iterdir()) == [
        "VOCtrainval_11-May-2012.tar",
        "benchmark.tgz",
    ]
    assert "Nothing to be done" in project.snakemake("--dry-run", target).stdout
    assert sorted(hits) == ["/VOCtrainval_11-May-2012.tar", "/benchmark.tgz"]


def test_fetch_needs_the_voc_kind(tmp_path):
    project = make_project(tmp_path / "project", {"dataset": {"fetch": True}})
    result = project.snakemake("--dry-run", check=False)
    assert result.returncode != 0
    assert (
        "i2crc error: config key 'dataset.fetch': builds VOC 2012 + SBD, which needs "
        "dataset.kind 'voc' (got 'synthetic')" in result.stderr
    )


def test_imagenet_weights_come_from_the_torchvision_cache(tmp_path):
    torch_home = tmp_path / "torch_home"
    cached = torch_home / "hub" / "checkpoints" / VGG16_FILE
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"stand-in for the cached file")
    project = make_project(
        tmp_path / "project", {"classifier": {"backbone": "vgg16", "weights": "imagenet"}}
    )
    assert project.planned_jobs()["imagenet_weights"] == 1
    os.environ["TORCH_HOME"] = str(torch_home)
    try:
        project.snakemake("results/weights/vgg16_imagenet.pth")
    finally:
        del os.environ["TORCH_HOME"]
    link = project.root / "results" / "weights" / "vgg16_imagenet.pth"
    assert link.resolve() == cached.resolve()


def test_imagenet_weights_offline_without_cache_say_how_to_provide_them(tmp_path, closed_port):
    project = make_project(
        tmp_path / "project", {"segmentation": {"backbone": "resnet101", "weights": "imagenet"}}
    )
    # A proxy on a closed port makes the machine offline for this run, even where it is not.
    offline = {
        "TORCH_HOME": str(tmp_path / "empty_torch_home"),
        "HTTPS_PROXY": f"http://127.0.0.1:{closed_port}",
        "NO_PROXY": "",
    }
    saved = {key: os.environ.get(key) for key in offline}
    os.environ.update(offline)
    try:
        result = project.snakemake("results/weights/resnet101_imagenet.pth", check=False)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    assert result.returncode != 0
    assert "cannot get ImageNet weights for backbone 'resnet101'" in result.stderr
    assert "put it at" in result.stderr
    assert not (project.root / "results" / "weights" / "resnet101_imagenet.pth").exists()


def test_a_saliency_archive_with_a_link_is_refused_before_any_map_is_read(tmp_path):
    """Maps nested four folders deep, one a link that stays inside the extraction folder (the tar
    "data" filter passes it) but points at a file outside the run once the single top folders
    are stripped: results/saliency/fetched/d.png -> ../../../../secret/d.png."""
    archive = tmp_path / "saliency_aug.tar"
    _, project = voc_project_of(
        tmp_path,
        {"train": ["a", "b", "c", "d"], "val": ["e"]},
        {"source": "url", "url": str(archive)},
    )
    secret = tmp_path / "secret" / "d.png"
    secret.parent.mkdir()
    (tmp_path / "saliency" / "d.png").rename(secret)
    nested = "d1/d2/d3/d4"
    with tarfile.open(archive, "w") as bundle:
        for image_id in "abc":
            bundle.add(tmp_path / "saliency" / f"{image_id}.png", f"{nested}/{image_id}.png")
        link = tarfile.TarInfo(f"{nested}/d.png")
        link.type, link.linkname = tarfile.SYMTYPE, "../../../../secret/d.png"
        bundle.addfile(link)
    before = {path: path.read_bytes() for path in tmp_path.rglob("*.png")}
    result = project.snakemake("results/saliency/quality.json", check=False)
    assert result.returncode != 0
    refused = f"saliency_aug.tar: member '{nested}/d.png' is a symbolic link (to '../../../../"
    errors = [line for line in result.stderr.splitlines() if line.startswith("i2crc error: ")]
    assert len(errors) == 1 and refused in errors[0], result.stderr
    assert "Traceback" not in result.stderr
    assert not (project.root / "results" / "saliency").exists()
    after = {path: path.read_bytes() for path in tmp_path.rglob("*.png")}
    assert after == before, "no map written or replaced anywhere"
