"""Rerun semantics: Snakemake reruns exactly what a change invalidates (dry runs)."""

import shutil

import pytest

import rerun_matrix
from workflow_project import Project, deep_update

pytestmark = pytest.mark.slow

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
        "README's rerun matrix differs from what the dry runs schedule now:\n" + table)


def test_the_matrix_reads_what_a_dry_run_would_rerun(project):
    outcome = rerun_matrix.dry_run(project, deep_update(project.config, {"refinement": {"min_foreground": 0.5}}),
                                   "refinement")
    assert outcome.invalidated == ("refine_labels",)
    assert outcome.training_jobs == 2 and outcome.jobs > 2, "round 2 retrains, its metrics follow"


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
