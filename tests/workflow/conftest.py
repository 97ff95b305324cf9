"""Fixtures that run the real Snakemake workflow on a tiny configuration."""

import pytest

from tests.helpers.workflow_project import Project, make_project


@pytest.fixture(scope="session")
def finished_project(tmp_path_factory) -> Project:
    """A tiny project whose default target has run to completion once."""
    project = make_project(tmp_path_factory.mktemp("pipeline") / "project")
    project.snakemake()
    return project


@pytest.fixture
def fresh_project(tmp_path) -> Project:
    return make_project(tmp_path / "project")
