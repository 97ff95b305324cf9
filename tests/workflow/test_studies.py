"""The studies' project copies (bench/projects.py): a copy of a finished project is finished,
and a change reruns only what it invalidates, as in the project it was copied from."""

import pytest

from bench import projects
from i2crc_core.infra.config import deep_update
from tests.helpers.workflow_project import make_project

pytestmark = pytest.mark.pipeline


def test_a_copied_project_reruns_only_what_a_change_invalidates(finished_project, tmp_path):
    copy = make_project(tmp_path / "copy")
    projects.copy(finished_project.root, copy.root)
    assert copy.planned_jobs() == {}, "the copy is as finished as its source"
    flipped = {"pseudo_labels": {"stretch_cams": False}}  # the default is True
    copy.write_config(deep_update(copy.config, flipped))
    planned = copy.planned_jobs()
    assert planned.get("pseudo_labels") == 2, planned  # baseline and i2crc
    assert not {"pretrain", "train_classifier", "extract_cams", "saliency"} & set(planned)
    assert planned == finished_project_planned(finished_project, copy.config)


def finished_project_planned(project, config) -> dict:
    """What the same change schedules in the source project (its config restored after)."""
    original = project.config
    project.write_config(config)
    try:
        return project.planned_jobs()
    finally:
        project.write_config(original)
