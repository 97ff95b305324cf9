"""The seed aggregation of bench/bench_seeds.py."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from bench_seeds import aggregate_markdown, aggregate_runs  # noqa: E402


def test_aggregate_runs_gives_mean_and_sample_spread():
    runs = [{"experiments": {"a": {"m": v, "cam_only_threshold": 0.3, "n": None}}}
            for v in (0.2, 0.4, 0.6)]
    stats = aggregate_runs(runs)["a"]["m"]
    assert stats["mean"] == pytest.approx(0.4) and stats["std"] == pytest.approx(0.2)
    assert (stats["min"], stats["max"], stats["n"]) == (0.2, 0.6, 3)
    assert "cam_only_threshold" not in aggregate_runs(runs)["a"]
    assert "| m | 40.0 ± 20.0 |" in aggregate_markdown(aggregate_runs(runs))
