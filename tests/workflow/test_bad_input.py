"""User mistakes through the real CLI: one `i2crc error:` line naming the key or file, a
non-zero exit, and no output that Snakemake would take as finished."""

import pytest
from test_presets import voc_project

from tests.helpers.workflow_project import RUN0, make_project

pytestmark = pytest.mark.pipeline


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"classifier": {"epoch": 3}}, "unknown key 'classifier.epoch'"),
        (
            {"classifier": {"epochs": "many"}},
            "config key 'classifier.epochs': 'many' is not of type 'integer'",
        ),
        (
            {"classifier": {"epochs": 0}},
            "config key 'classifier.epochs': 0 is less than the minimum of 1",
        ),
        (
            {"pseudo_labels": {"bg_cam": 1.5}},
            "config key 'pseudo_labels.bg_cam': 1.5 is greater than the maximum of 1",
        ),
        ({"segmentation": {"lr": -0.1}}, "config key 'segmentation.lr'"),
        (
            {"segmentation": {"backbone": "resnet50"}},
            "config key 'segmentation.backbone': 'resnet50' is not one of",
        ),
        (
            {"run_experiments": ["baseline", "i2crcc"]},
            "config key 'run_experiments': unknown experiment 'i2crcc'",
        ),
        ({"dataset": {"kind": "voc"}}, "config key 'dataset.root': required"),
        (
            {"classifier": {"epochs": 1e12}},
            "config key 'classifier.epochs': 1e+12 is beyond 2147483647, the largest an integer "
            "key takes",
        ),
    ],
)
def test_config_errors_fail_at_startup_naming_the_key(tmp_path, change, message):
    project = make_project(tmp_path / "project", change)
    result = project.snakemake("--dry-run", check=False)
    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("i2crc error: ") and message in last_line, result.stderr
    assert "Traceback" not in result.stderr
    assert not (project.root / "results").exists()


def test_missing_dataset_root_fails_in_the_dataset_rule(tmp_path):
    missing = tmp_path / "nowhere" / "VOC2012"
    project = make_project(tmp_path / "project", {"dataset": {"kind": "voc", "root": str(missing)}})
    result = project.snakemake("results/dataset/manifest.json", check=False)
    assert result.returncode != 0
    assert f"i2crc error: {missing}: dataset root does not exist" in result.stderr
    assert not (project.root / "results" / "dataset" / "manifest.json").exists()


def test_missing_saliency_folder_fails_in_the_saliency_rule(tmp_path):
    folder = tmp_path / "no_saliency_here"
    _, project = voc_project(
        tmp_path,
        {"train": ["a", "b"], "val": ["c"]},
        {"source": "folder", "folder": str(folder)},
    )
    result = project.snakemake("results/saliency/quality.json", check=False)
    assert result.returncode != 0
    assert f"i2crc error: {folder / 'a.png'}: saliency map is missing" in result.stderr
    assert (project.root / "results" / "dataset" / "manifest.json").exists()
    assert not (project.root / "results" / "saliency" / "maps").exists()
    assert not (project.root / "results" / "saliency" / "quality.json").exists()


def test_a_bug_leaves_its_traceback_in_the_rule_log(tmp_path):
    project = make_project(tmp_path / "project")
    stage = project.root / "i2crc_core" / "stages" / "synthetic_dataset.py"
    source = stage.read_text()
    signature = source.index("\n", source.index("def run(")) + 1
    stage.write_text(source[:signature] + '    {}["injected bug"]\n' + source[signature:])
    result = project.snakemake("--show-failed-logs", f"{RUN0}/dataset/synthetic", check=False)
    assert result.returncode != 0
    log = (project.root / RUN0 / "logs" / "generate_synthetic.log").read_text()
    assert "Traceback (most recent call last)" in log and "KeyError: 'injected bug'" in log
    assert log in result.stdout + result.stderr, "--show-failed-logs shows the log"
    assert not (project.root / RUN0 / "dataset" / "synthetic").exists()


def _files_outside(tmp_path, project) -> dict:
    """Every file below `tmp_path` but the project's own (its code, results and Snakemake's
    state), with its bytes and modification time."""
    return {
        path: (path.read_bytes(), path.stat().st_mtime_ns)
        for path in tmp_path.rglob("*")
        if path.is_file() and project.root not in path.parents
    }


@pytest.mark.parametrize("form", ["absolute", "dot-dot"])
def test_an_image_id_naming_a_file_elsewhere_is_refused_before_anything_runs(tmp_path, form):
    root, project = voc_project(
        tmp_path,
        {"train": ["a", "b", "evil"], "val": ["c"]},
        {"source": "folder", "folder": str(tmp_path / "saliency")},
    )
    # The image, mask and saliency map of 'evil' moved elsewhere, where an id that escapes the
    # dataset's folders names them (and the saliency stage used to write its map over the mask).
    elsewhere = tmp_path / "some" / "where"
    elsewhere.mkdir(parents=True)
    for folder, suffix in [("JPEGImages", ".jpg"), ("SegmentationClass", ".png")]:
        (root / folder / f"evil{suffix}").rename(elsewhere / f"evil{suffix}")
    (tmp_path / "saliency" / "evil.png").unlink()
    evil = str(elsewhere / "evil")
    bad_id = evil if form == "absolute" else "../" * 30 + evil.lstrip("/")
    split = root / "ImageSets" / "Segmentation" / "train.txt"
    split.write_text(f"a\nb\n{bad_id}\n")
    before = _files_outside(tmp_path, project)
    result = project.snakemake("results/saliency/quality.json", check=False)
    assert result.returncode != 0
    assert f"i2crc error: {split}, line 3: image id {bad_id!r} contains '/'" in result.stderr
    assert "Traceback" not in result.stderr
    assert _files_outside(tmp_path, project) == before, "nothing outside the run changed"
    assert not (project.root / "results" / "dataset" / "manifest.json").exists()
    assert not (project.root / "results" / "saliency").exists()
