"""The seed aggregation of the summary over seeds, with paired differences to the baseline."""

import json

import pytest

from i2crc_core.stages import summary_seeds
from i2crc_core.stages.summary_seeds import aggregate_markdown, aggregate_runs

T_975_2 = 4.302653  # t_{0.975} with 2 degrees of freedom


def test_aggregate_runs_gives_mean_sample_spread_and_each_seed():
    runs = {
        seed: {"experiments": {"a": {"m": v, "cam_only_threshold": 0.3, "n": None}}}
        for seed, v in zip((0, 1, 2), (0.2, 0.4, 0.6))
    }
    stats = aggregate_runs(runs)["a"]["m"]
    assert stats["mean"] == pytest.approx(0.4) and stats["std"] == pytest.approx(0.2)
    assert (stats["values"], stats["n"]) == ([0.2, 0.4, 0.6], 3)
    assert "cam_only_threshold" not in aggregate_runs(runs)["a"]
    markdown = aggregate_markdown(aggregate_runs(runs), [0, 1, 2])
    assert markdown.startswith("3 seeds (0, 1, 2): mean ± sample standard deviation")
    assert "| m | 40.0 ± 20.0 (20.0 / 40.0 / 60.0) |" in markdown
    assert "Paired difference" not in markdown, "no baseline, nothing to compare with"
    assert "vs_baseline" not in stats


def test_one_seed_is_its_value():
    table = aggregate_runs({5: {"experiments": {"a": {"m": 0.25}}}})
    assert table["a"]["m"]["std"] == 0.0
    assert "| m | 25.0 |" in aggregate_markdown(table, [5])


# Differences i2crc − baseline of 1, 2 and 3 points in `m`; `full` the ceiling.
THREE_SEEDS = {
    seed: {
        "experiments": {
            "baseline": {"m": b, "m_threshold": 0.1, "only_baseline": 0.5},
            "i2crc": {"m": b + d, "m_threshold": 0.9, "only_i2crc": 0.5},
            "full": {"m": 0.9},
        }
    }
    for seed, b, d in zip((0, 1, 2), (0.50, 0.60, 0.70), (0.01, 0.02, 0.03))
}


def test_the_paired_difference_has_the_t_interval_of_its_mean():
    table = aggregate_runs(THREE_SEEDS)
    paired = table["i2crc"]["m"]["vs_baseline"]
    assert paired["values"] == pytest.approx([0.01, 0.02, 0.03])
    assert (paired["mean"], paired["std"], paired["n"]) == (
        pytest.approx(0.02),
        pytest.approx(0.01),
        3,
    )
    half = T_975_2 * 0.01 / 3**0.5
    assert paired["ci95"] == pytest.approx([0.02 - half, 0.02 + half], abs=1e-7)
    assert paired["ci95"][0] == pytest.approx(-0.0048414, abs=1e-7)


def test_only_method_rows_and_shared_scores_are_compared():
    table = aggregate_runs(THREE_SEEDS)
    assert not any("vs_baseline" in stats for stats in table["baseline"].values())
    assert not any("vs_baseline" in stats for stats in table["full"].values()), "not a method"
    assert "vs_baseline" not in table["i2crc"]["only_i2crc"], "the baseline has no value"
    assert "m_threshold" not in table["i2crc"]


def test_the_difference_pairs_the_seeds_where_both_have_a_value():
    runs = {
        seed: {"experiments": {"baseline": {"m": b}, "x": {"m": x}}}
        for seed, b, x in ((0, 0.5, 0.6), (1, None, 0.9), (2, 0.4, None))
    }
    table = aggregate_runs(runs)
    assert table["x"]["m"]["n"] == 2 and table["baseline"]["m"]["n"] == 2
    paired = table["x"]["m"]["vs_baseline"]
    assert (paired["values"], paired["n"]) == ([pytest.approx(0.1)], 1)
    assert paired["ci95"] == [None, None], "no interval from one seed"
    assert "| m | +10.0 (n=1) |" in aggregate_markdown(table, [0, 1, 2])


def test_the_markdown_gives_the_paired_differences_below_the_spread():
    markdown = aggregate_markdown(aggregate_runs(THREE_SEEDS), [0, 1, 2])
    spread, paired = markdown.split(
        "Paired difference to the baseline (percentage points): mean [95 % t-interval] (n)"
    )
    assert "| metric | baseline | i2crc | full |" in spread
    assert (
        "| m | 60.0 ± 10.0 (50.0 / 60.0 / 70.0) | 62.0 ± 11.0 (51.0 / 62.0 / 73.0) "
        "| 90.0 ± 0.0 (90.0 / 90.0 / 90.0) |"
    ) in spread
    assert "| metric | i2crc |" in paired, "only the compared experiments"
    assert "| m | +2.0 [-0.5, +4.5] (n=3) |" in paired
    assert "only_i2crc" not in paired


def test_run_writes_the_paired_statistics_to_json(tmp_path):
    paths = []
    for seed, summary in THREE_SEEDS.items():
        paths.append(tmp_path / f"summary{seed}.json")
        paths[-1].write_text(json.dumps(summary))
    summary_seeds.run(
        summary_paths=paths,
        seeds=[0, 1, 2],
        json_path=tmp_path / "seeds.json",
        markdown_path=tmp_path / "seeds.md",
    )
    written = json.loads((tmp_path / "seeds.json").read_text())
    assert written["seeds"] == [0, 1, 2]
    assert written["aggregate"]["i2crc"]["m"]["vs_baseline"]["mean"] == pytest.approx(0.02)
    assert written["per_seed"]["1"] == THREE_SEEDS[1]
    assert "| m | +2.0 [-0.5, +4.5] (n=3) |" in (tmp_path / "seeds.md").read_text()
