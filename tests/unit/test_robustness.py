"""The robustness table (bench/robustness.py): a conclusion holds only where the sign and the
"interval excludes 0" status of a paired difference agree in every setting."""

import json
import sys

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


def aggregate(shift):
    """An aggregate over two seeds as summary.seeds writes it, every row `shift` above the
    baseline in every stage."""
    columns = (*robustness.STAGES, *(f"{key}_of_full" for key in robustness.SEGMENTATION))

    def row(value):
        paired = {"mean": value, "ci95": [value - 0.01, value + 0.01], "n": 2}
        return {column: {"mean": 0.5 + value, "vs_baseline": paired} for column in columns}

    rows = {name: row(shift) for name in robustness.ROWS}
    full = {"seg_val_round1": {"mean": 0.75, "std": 0.01}}
    return {"aggregate": {"baseline": row(0.0), "full": full, **rows}}


def test_the_report_and_table_from_three_summaries(tmp_path, monkeypatch, capsys):
    paths = []
    for name, shift in (("default", 0.05), ("4x", 0.04), ("128px", -0.03)):
        paths.append(tmp_path / f"{name}.json")
        paths[-1].write_text(json.dumps(aggregate(shift)))
    table = tmp_path / "table.md"
    monkeypatch.setattr(sys, "argv", ["robustness", *map(str, paths), "--markdown", str(table)])
    robustness.main()
    report = json.loads(capsys.readouterr().out)
    result = report["rows"]["i2crc"]["seg round 1"]
    assert result["cells"]["4x"]["mean"] == 4.0
    assert result["differs_in"] == ["128px"]
    assert report["full"]["128px"] == {"mean": 75.0, "std": 1.0}
    lines = table.read_text().splitlines()
    assert "| full | seg round 1, mIoU | 75.0 ± 1.0 | 75.0 ± 1.0 | 75.0 ± 1.0 |  |" in lines
    assert any(line.startswith("| baseline | seg +LR, % of full | 50.0 |") for line in lines)
    assert (
        "| cad | seg round 1 − baseline | +5.0 [+4.0, +6.0] | +4.0 [+3.0, +5.0] "
        "| -3.0 [-4.0, -2.0] | no: 128px |" in lines
    )
