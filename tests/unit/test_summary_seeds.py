"""The seed aggregation of the summary over seeds."""

import pytest

from i2crc_core.stages.summary_seeds import aggregate_markdown, aggregate_runs


def test_aggregate_runs_gives_mean_sample_spread_and_each_seed():
    runs = {seed: {"experiments": {"a": {"m": v, "cam_only_threshold": 0.3, "n": None}}}
            for seed, v in zip((0, 1, 2), (0.2, 0.4, 0.6))}
    stats = aggregate_runs(runs)["a"]["m"]
    assert stats["mean"] == pytest.approx(0.4) and stats["std"] == pytest.approx(0.2)
    assert (stats["values"], stats["n"]) == ([0.2, 0.4, 0.6], 3)
    assert "cam_only_threshold" not in aggregate_runs(runs)["a"]
    assert "| m | 40.0 ± 20.0 (20.0 / 40.0 / 60.0) |" in aggregate_markdown(aggregate_runs(runs), [0, 1, 2])


def test_one_seed_is_its_value():
    table = aggregate_runs({5: {"experiments": {"a": {"m": 0.25}}}})
    assert table["a"]["m"]["std"] == 0.0
    assert "| m | 25.0 |" in aggregate_markdown(table, [5])
