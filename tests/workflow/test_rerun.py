"""Rerun semantics: Snakemake reruns exactly what a change invalidates (dry runs)."""

import shutil

import pytest

from workflow_project import Project, deep_update

pytestmark = pytest.mark.slow

UPSTREAM = {"generate_synthetic", "prepare_dataset", "saliency"}


@pytest.fixture
def project(finished_project, tmp_path) -> Project:
    """A private copy of the finished project (results and Snakemake metadata included)."""
    root = tmp_path / "project"
    shutil.copytree(finished_project.root, root, symlinks=True)
    return Project(root, finished_project.config)


def test_pseudo_label_threshold_reruns_only_pseudo_labels_and_what_follows(project):
    project.write_config(deep_update(project.config, {"pseudo_labels": {"score_floor": 0.25}}))
    jobs = project.planned_jobs()
    assert jobs["pseudo_labels"] == 2
    assert jobs["train_segmentation"] == 4
    assert not set(jobs) & (UPSTREAM | {"train_classifier", "extract_cams", "gather_cams"})


def test_lambda_csd_reruns_that_experiment_from_its_classifier_on(project):
    experiments = dict(project.config.get("experiments", {}))
    experiments["i2crc"] = {"lambda_ob": 0.01, "lambda_bg": 0.025, "lambda_csd": 0.2}
    project.write_config({**project.config, "experiments": experiments})
    jobs = project.planned_jobs()
    assert jobs["train_classifier"] == 1
    assert jobs["extract_cams"] == 2 and jobs["pseudo_labels"] == 1
    assert not set(jobs) & UPSTREAM


def test_changing_the_number_of_cam_shards_does_not_retrain(project):
    project.write_config(deep_update(project.config, {"cams": {"shards": 3}}))
    jobs = project.planned_jobs()
    assert jobs["extract_cams"] == 6
    assert "train_classifier" not in jobs
    assert not set(jobs) & UPSTREAM


def test_library_edit_reruns_exactly_the_stages_that_import_it(project):
    module = project.root / "i2crc_core" / "refine.py"
    module.write_text(module.read_text() + "\n# an edit that changes the code fingerprint\n")
    jobs = project.planned_jobs()
    assert jobs["refine_labels"] == 2
    assert not set(jobs) & (UPSTREAM | {"train_classifier", "extract_cams", "pseudo_labels"})
    assert "train_segmentation" in jobs  # retraining on the refined labels follows


def test_loss_edit_retrains_the_classifiers_but_not_the_data_stages(project):
    losses = project.root / "i2crc_core" / "losses.py"
    losses.write_text(losses.read_text() + "\n# an edit that changes the code fingerprint\n")
    jobs = project.planned_jobs()
    assert jobs["train_classifier"] == 2
    assert not set(jobs) & UPSTREAM
