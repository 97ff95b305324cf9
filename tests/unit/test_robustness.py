"""The robustness table (bench/robustness.py): a conclusion holds only where the sign and the
"interval excludes 0" status of a paired difference agree in every setting."""

import json
import sys

import pytest

from bench import robustness


def cell(mean, low, high):
    return {"mean": mean, "low": low, "high": high, "n": 5}


def test_a_difference_that_keeps_its_sign_and_significance_holds():
    cells = {"default": cell(4.4, 3.8, 5.0), "4x": cell(2.0, 0.5, 3.5), "128px": cell(9, 1, 17)}
    assert robustness.verdict(cells) == {"holds": True, "differs_in": []}


def test_a_flip_or_a_lost_significance_names_the_setting():
    flipped = {"default": cell(4.4, 3.8, 5.0), "4x": cell(4.0, 3.0, 5.0), "128px": cell(-2, -3, -1)}
    assert robustness.verdict(flipped) == {"holds": False, "differs_in": ["128px"]}
    lost = {"default": cell(4.4, 3.8, 5.0), "4x": cell(1.0, -0.5, 2.5), "128px": cell(3, 1, 5)}
    assert robustness.verdict(lost) == {"holds": False, "differs_in": ["4x"]}


def test_insignificant_everywhere_holds_as_insignificant():
    cells = {"default": cell(0.5, -1, 2), "4x": cell(0.2, -0.3, 0.7), "128px": cell(1, -2, 4)}
    assert robustness.verdict(cells)["holds"]
    assert robustness.status(cell(0.5, None, None)) == (1, False)


def summary(shift):
    """A summary over three seeds as summary_seeds writes it: every row `shift` (± a little by
    seed) above the baseline at every stage, and +LR a point below round 1."""
    per_seed = {}
    for seed, jitter in enumerate((-0.002, 0.0, 0.002)):
        row = {column: 0.5 + shift + jitter for column in robustness.STAGES}
        row["seg_val_retrain_refined"] = row["seg_val_round1"] - 0.01
        baseline = {column: 0.5 for column in robustness.STAGES}
        baseline["seg_val_retrain_refined"] = 0.5 + jitter
        experiments = {name: row for name in robustness.ROWS}
        per_seed[str(seed)] = {"experiments": {"baseline": baseline, **experiments}}
    scores = {column: {"mean": 0.6} for column in robustness.SCORES}
    aggregate = {name: scores for name in ("baseline", *robustness.ROWS)}
    full = {"seg_val_round1": {"mean": 0.75, "std": 0.01}}
    return {"per_seed": per_seed, "aggregate": {**aggregate, "full": full}}


def test_the_report_and_table_from_three_summaries(tmp_path, monkeypatch, capsys):
    paths = []
    for name, shift in (("default", 0.05), ("4x", 0.04), ("128px", -0.03)):
        paths.append(tmp_path / f"{name}.json")
        paths[-1].write_text(json.dumps(summary(shift)))
    table = tmp_path / "table.md"
    monkeypatch.setattr(sys, "argv", ["robustness", *map(str, paths), "--markdown", str(table)])
    robustness.main()
    report = json.loads(capsys.readouterr().out)
    flipped = report["conclusions"]["i2crc: seg round 1 − baseline"]
    assert flipped["cells"]["4x"]["mean"] == pytest.approx(4.0)
    assert flipped["cells"]["4x"]["n"] == 3
    assert flipped["differs_in"] == ["128px"]
    level = report["conclusions"]["i2crc − cad, seg round 1"]
    assert level["holds"] and level["cells"]["default"] == {"mean": 0, "low": 0, "high": 0, "n": 3}
    refined = report["conclusions"]["i2crc: seg +LR − round 1"]
    assert refined["holds"] and refined["cells"]["128px"]["mean"] == pytest.approx(-1.0)
    assert report["conclusions"]["baseline: seg +LR − round 1"]["differs_in"] == []
    assert report["full"]["128px"] == {"mean": 75.0, "std": 1.0}
    lines = table.read_text().splitlines()
    assert "| full: seg round 1, mIoU | 75.0 ± 1.0 | 75.0 ± 1.0 | 75.0 ± 1.0 |  |" in lines
    assert "| baseline: seg +LR, % of full | 60.0 | 60.0 | 60.0 |  |" in lines
    assert "| cad_no_bg: pseudo labels ignored, % | 60.0 | 60.0 | 60.0 |  |" in lines
    assert (
        "| cad: seg round 1 − baseline | +5.0 [+4.5, +5.5] | +4.0 [+3.5, +4.5] "
        "| -3.0 [-3.5, -2.5] | no: 128px |" in lines
    )
