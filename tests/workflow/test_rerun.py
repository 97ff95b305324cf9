"""Rerun semantics: Snakemake reruns exactly what a change invalidates (dry runs)."""

import shutil

import numpy as np
import pytest
import rerun_matrix
from PIL import Image

from i2crc_core.infra.config import deep_update
from tests.helpers.workflow_project import Project

pytestmark = pytest.mark.rerun

UPSTREAM = {"generate_synthetic", "prepare_dataset", "saliency"}


@pytest.fixture
def project(finished_project, tmp_path) -> Project:
    """A private copy of the finished project (results and Snakemake metadata included)."""
    root = tmp_path / "project"
    shutil.copytree(finished_project.root, root, symlinks=True)
    return Project(root, finished_project.config)


def test_every_config_key_reruns_what_the_readme_table_says(finished_project):
    table = rerun_matrix.markdown(rerun_matrix.compute(finished_project))
    assert table == rerun_matrix.readme_table(), (
        "docs/reproducibility.md's rerun matrix differs from what the dry runs schedule now:\n"
        + table
    )


@pytest.fixture(scope="module")
def data_project(finished_project, tmp_path_factory):
    return rerun_matrix.make_data_project(
        tmp_path_factory.mktemp("data") / "project", finished_project
    )


def test_every_data_edit_reruns_what_the_readme_table_says(data_project):
    assert data_project.planned_jobs() == {}, "an untouched dataset reruns nothing"
    table = rerun_matrix.data_markdown(rerun_matrix.data_rows(data_project))
    assert table == rerun_matrix.readme_table(rerun_matrix.DATA_README_MARKERS), (
        "docs/reproducibility.md's data rerun table differs from what the dry runs schedule now:\n"
        + table
    )


def test_a_mask_given_a_new_class_and_a_split_list_given_an_id_rerun_the_dataset(
    data_project, tmp_path
):
    """The report that made data fingerprints: both edits left `snakemake -n` with nothing."""
    root = tmp_path / "project"
    shutil.copytree(data_project.root, root, symlinks=True)
    project = Project(root, data_project.config)
    voc = root / rerun_matrix.DATA_ROOT
    mask_path = voc / "SegmentationClass" / f"{rerun_matrix.first_id(project, 'val')}.png"
    mask = np.array(Image.open(mask_path))
    mask[0, 0] = 9
    Image.fromarray(mask).save(mask_path)
    assert project.planned_jobs()["prepare_dataset"] == 1
    mask_path.write_bytes(data_project.root.joinpath(mask_path.relative_to(root)).read_bytes())
    split = voc / "ImageSets/Segmentation/train.txt"
    split.write_text(split.read_text() + "extra_id\n")
    result = project.snakemake("prepare_dataset", check=False)
    assert result.returncode != 0 and "extra_id" in result.stderr + result.stdout


def test_the_matrix_reads_what_a_dry_run_would_rerun(project):
    outcome = rerun_matrix.dry_run(
        project, deep_update(project.config, {"refinement": {"min_foreground": 0.5}}), "refinement"
    )
    assert outcome.invalidated == ("refine_labels",)
    assert outcome.training_jobs == 2 and outcome.jobs > 2, "round 2 retrains, its metrics follow"


def test_the_crf_switch_reruns_what_inference_scales_do_and_its_parameters_nothing_while_off(
    project,
):
    """segmentation.crf (not in config.yaml, so not in the README's matrix): turning it on
    reruns prediction and what follows, as a change of inference scales does; the parameters
    of a disabled CRF rerun nothing."""

    def outcome(change, name):
        return rerun_matrix.dry_run(project, deep_update(project.config, change), name)

    switched = outcome({"segmentation": {"crf": {"enabled": True}}}, "crf_on")
    scales = outcome({"segmentation": {"inference_scales": [1.0, 0.5]}}, "scales")
    assert switched == scales and "predict" in switched.invalidated
    assert "train_classifier" not in switched.invalidated and switched.training_jobs == 2
    assert outcome({"segmentation": {"crf": {"bi_w": 5, "iter_max": 3}}}, "crf_off").jobs == 0


def test_library_edit_reruns_exactly_the_stages_that_import_it(project):
    module = project.root / "i2crc_core" / "method" / "refine.py"
    module.write_text(module.read_text() + "\n# an edit that changes the code fingerprint\n")
    jobs = project.planned_jobs()
    assert jobs["refine_labels"] == 2
    assert not set(jobs) & (UPSTREAM | {"train_classifier", "extract_cams", "pseudo_labels"})
    assert "train_segmentation" in jobs  # retraining on the refined labels follows


def test_loss_edit_retrains_the_classifiers_but_not_the_data_stages(project):
    losses = project.root / "i2crc_core" / "method" / "losses.py"
    losses.write_text(losses.read_text() + "\n# an edit that changes the code fingerprint\n")
    jobs = project.planned_jobs()
    assert jobs["train_classifier"] == 2
    assert not set(jobs) & UPSTREAM


def test_touch_marks_a_code_param_change_done_and_later_changes_still_rerun(project):
    """docs/reproducibility.md §"A finished project across a new fingerprint formula": when
    only code params differ, `--touch` records today's and runs nothing; what changes later
    reruns as usual (a project without records would not see it)."""
    module = project.root / "i2crc_core" / "data" / "synthetic.py"
    module.write_text(module.read_text() + "\n# an edit that changes the code fingerprint\n")
    assert "generate_synthetic" in project.planned_jobs()
    assert project.planned_jobs("--rerun-triggers", "mtime", "input", "code", "software-env") == {}
    project.snakemake("--touch")
    assert project.planned_jobs() == {}
    project.write_config(deep_update(project.config, {"refinement": {"min_foreground": 0.02}}))
    assert project.planned_jobs()["refine_labels"] == 2


def test_a_nested_command_line_override_reaches_the_stage_typed(project):
    """`--config 'classifier={epochs: 3}'` arrives as text ('3'); typed by the schema, it
    retrains the classifiers like the same change in a config file."""
    planned = project.planned_jobs("--config", "classifier={epochs: 3}")
    assert planned["train_classifier"] == 2
    same = deep_update(project.config, {"classifier": {"epochs": 3}})
    assert rerun_matrix.dry_run(project, same, "epochs").invalidated == ("train_classifier",)
