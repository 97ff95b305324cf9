"""SIGKILL during classifier training and CAM extraction, SIGTERM during segmentation
training; resume.

One project is interrupted three times, at a different stage each time, and finished with
`--rerun-incomplete`. Its outputs must equal, byte for byte (labels, metrics) or value for
value (CAM stores), those of an uninterrupted run of the same configuration and seed — which
also shows that two runs with one seed give identical results.
"""

import base64
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from tests.helpers.workflow_project import RUN0, SNAKEMAKE, make_project, output_bytes

pytestmark = pytest.mark.pipeline

# Long enough training that a kill lands between two checkpoints.
SLOWER = {
    "classifier": {"epochs": 8, "lr_decay_epochs": [6]},
    "segmentation": {"iterations": 16, "checkpoint_every": 2},
    # The interrupted runs go one job at a time (--cores 1), which would cap the pretraining's
    # 2 threads at 1, and another thread count sums in another order
    # (docs/reproducibility.md §"Determinism").
    "resources": {"pretrain": {"threads": 1}},
}
EXPERIMENTS = ("baseline", "i2crc")


def run_until(project, condition, sig=signal.SIGKILL, timeout=300) -> str:
    """Start the default target and send `sig` to its whole process group once `condition()`
    holds. A SIGKILLed Snakemake cannot release its lock, so that case is followed by
    `snakemake --unlock` (as Snakemake's own message says); after SIGTERM no unlock is needed."""
    env = {**os.environ, "PYTHONPATH": str(project.root), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [str(SNAKEMAKE), "--cores", "1", "--configfile", "test_config.yaml", "--rerun-incomplete"],
        cwd=project.root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            hit = condition()
            if hit:
                return hit
            if process.poll() is not None:
                pytest.fail("the run finished before the kill point was reached")
            time.sleep(0.02)
        pytest.fail("kill point not reached in time")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, sig)
        process.wait(timeout=120)
        if sig == signal.SIGKILL:
            project.snakemake("--unlock")


def mid_training(out: Path, stage_dir: str):
    """An experiment whose training has a checkpoint but no final model yet."""

    def condition():
        for experiment in EXPERIMENTS:
            directory = out / experiment / stage_dir
            if (
                list(directory.glob("checkpoints/*/step_*.pt"))
                and not (directory / "model.pt").exists()
            ):
                return experiment
        return None

    return condition


def recorded_complete(project_root: Path, output: Path) -> bool:
    """Snakemake has recorded the job that wrote `output` as finished (its metadata, keyed by
    the base64 of the relative path, exists and its incomplete marker is gone)."""
    key = base64.urlsafe_b64encode(str(output.relative_to(project_root)).encode()).decode()
    state = project_root / ".snakemake"
    return (state / "metadata" / key).exists() and not (state / "incomplete" / key).exists()


def between_cam_shards(project_root: Path, out: Path):
    """One shard of an experiment finished (and recorded so), the other not."""

    def condition():
        for experiment in EXPERIMENTS:
            shards = [out / experiment / "cams" / "shards" / f"{i}-of-2.h5" for i in (1, 2)]
            done = [shard for shard in shards if recorded_complete(project_root, shard)]
            if len(done) == 1 and sum(shard.exists() for shard in shards) == 1:
                return done[0]
        return None

    return condition


def cam_arrays(path: Path) -> dict[str, np.ndarray]:
    with h5py.File(path) as store:
        return {key: store["cams"][key][()] for key in store["cams"]}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    project = make_project(tmp_path_factory.mktemp("reference") / "project", SLOWER)
    project.snakemake()
    return project.root / RUN0


def test_killed_three_times_resumes_to_identical_results(reference, tmp_path):
    project = make_project(tmp_path / "project", SLOWER)
    out = project.root / RUN0

    killed_classifier = run_until(project, mid_training(out, "classifier"))
    killed_shard = run_until(project, between_cam_shards(project.root, out))
    shard_time = killed_shard.stat().st_mtime_ns
    killed_segmenter = run_until(project, mid_training(out, "segmentation/pseudo"), signal.SIGTERM)
    project.snakemake("--rerun-incomplete")

    classifier_log = (out / "logs" / "train_classifier" / f"{killed_classifier}.log").read_text()
    assert "resumed from" in classifier_log
    segmenter_log = out / "logs" / "train_segmentation" / killed_segmenter / "pseudo.log"
    assert "resumed from" in segmenter_log.read_text()
    assert killed_shard.stat().st_mtime_ns == shard_time, "a finished shard was recomputed"

    assert output_bytes(out) == output_bytes(reference)
    assert len(output_bytes(out)) > 20
    for experiment in EXPERIMENTS:
        resumed = cam_arrays(out / experiment / "cams" / "cams.h5")
        uninterrupted = cam_arrays(reference / experiment / "cams" / "cams.h5")
        assert resumed.keys() == uninterrupted.keys()
        for key, value in resumed.items():
            np.testing.assert_array_equal(value, uninterrupted[key])
    summary = json.loads((out / "summary.json").read_text())
    assert summary == json.loads((reference / "summary.json").read_text())


def test_a_run_past_its_time_out_is_killed_with_its_jobs(fresh_project):
    """Project.snakemake (and so gpu_check's pipeline run) kills Snakemake's whole process
    group at its time-out: no job of the run is left running."""
    with pytest.raises(subprocess.TimeoutExpired):
        fresh_project.snakemake(timeout=8)
    time.sleep(1)
    left = subprocess.run(["pgrep", "-f", str(fresh_project.root)], capture_output=True, text=True)
    assert left.stdout.strip() == "", f"still running: {left.stdout}"
