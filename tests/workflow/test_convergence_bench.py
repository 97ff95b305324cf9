"""bench/convergence.py on the smoke configuration: every stage at each budget through the
pipeline's own stage functions, the criterion's verdicts, and the figure."""

import json
import subprocess
import sys

from tests.helpers.workflow_project import REPO


def test_convergence_bench_scores_each_stage_at_each_budget(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "convergence.py"),
            "--configfile",
            str(REPO / ".test" / "config.yaml"),
            "--factors",
            "1",
            "2",
            "--out",
            str(tmp_path / "out"),
            "--figure",
            str(tmp_path / "convergence.png"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    # The smoke config: pretraining 1 epoch, classifier 2 epochs, segmenter 4 iterations.
    budgets = {"pretraining": [1, 2], "classifier": [2, 4], "full": [4, 8]}
    for stage, expected in budgets.items():
        runs = report[stage]["runs"]
        assert [run["budget"] for run in runs] == expected, stage
        assert all(0 <= run["metric"] <= 1 and run["train_seconds"] > 0 for run in runs), stage
        gain = round(100 * (runs[1]["metric"] - runs[0]["metric"]), 2)
        assert report[stage]["doubling_adds_points"] == gain
        assert report[stage]["plateau"] == (gain < 1.0)
    assert report["classifier"]["map_at_least_0.95"] == (
        report["classifier"]["runs"][0]["metric"] >= 0.95
    )
    assert "map_at_least_0.95" not in report["full"]
    assert report["cpu_capability"]
    assert (tmp_path / "convergence.png").stat().st_size > 10_000
