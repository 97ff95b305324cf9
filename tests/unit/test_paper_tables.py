"""The paper's Tables IV, V and VIII made from the summaries over seeds."""

import json

from PIL import Image

from i2crc_core.infra.config import defaults
from i2crc_core.report.paper_reference import PAPER_LAMBDAS
from i2crc_core.stages import paper_tables
from i2crc_core.stages.summary_seeds import aggregate_runs

CENTRE = {"lambda_ob": 0.01, "lambda_bg": 0.025, "lambda_csd": 0.1}
# Names that say nothing of the λs: the table must take them from these dicts.
LAMBDAS = {
    "i2crc": CENTRE,
    "sweep_a": {**CENTRE, "lambda_ob": 0.0075},
    "sweep_b": {**CENTRE, "lambda_ob": 0.0},
    "sweep_c": {**CENTRE, "lambda_bg": 0.04},
    "sweep_d": {**CENTRE, "lambda_csd": 0.2},
}


def over_seeds(rows_per_seed: dict[int, dict]) -> dict:
    """An aggregate JSON as summary_seeds writes it, from each seed's summary rows."""
    summaries = {seed: {"experiments": rows} for seed, rows in rows_per_seed.items()}
    return {"seeds": list(rows_per_seed), "aggregate": aggregate_runs(summaries)}


# The fully supervised row, as stages/summary.py writes it: its val mIoU only.
FULL = {"seg_val_round1": 0.8}
SEGMENTATION = ("seg_val_round1", "seg_val_retrain_refined", "seg_val_retrain_unrefined")


def row(seg: float, **columns) -> dict:
    """A weakly supervised row, its segmentation also as a fraction of FULL's."""
    values = {
        "cam_only_miou": 0.3,
        "cam_only_threshold": 0.2,
        "cam_only_fixed_miou": 0.25,
        "pseudo_train_miou_ignore_excluded": None,
        "pseudo_train_miou_ignore_as_bg": 0.4,
        "pseudo_train_ignored_fraction": 0.1,
        "refined_train_miou_ignore_excluded": 0.5,
        "refined_train_miou_ignore_as_bg": 0.45,
        "refined_train_ignored_fraction": 0.05,
        "seg_val_round1": seg,
        "seg_val_retrain_refined": 0.6,
        "seg_val_retrain_unrefined": 0.55,
        **columns,
    }
    return {
        **values,
        **{
            f"{column}_of_full": values[column] / FULL["seg_val_round1"]
            for column in SEGMENTATION
            if values[column] is not None
        },
    }


ABLATION = over_seeds(
    {
        0: {"cad_no_bg": row(0.2), "i2crc": row(0.4), "baseline": row(0.3), "full": FULL},
        1: {
            "cad_no_bg": row(0.2),
            "i2crc": row(0.6),
            "baseline": row(0.3, seg_val_round1=None),
            "full": FULL,
        },
    }
)
# Round-1 differences i2crc − baseline of 1, 2 and 3 points.
THREE_SEEDS = over_seeds(
    {
        seed: {"baseline": row(b), "i2crc": row(b + d), "full": FULL}
        for seed, b, d in zip((0, 1, 2), (0.50, 0.60, 0.70), (0.01, 0.02, 0.03))
    }
)
SWEEP = over_seeds(
    {
        seed: {
            **{name: row(0.1 * index) for index, name in enumerate(LAMBDAS, start=1)},
            "full": FULL,
        }
        for seed in (0, 1)
    }
)


def sections(markdown: str) -> tuple[str, str]:
    """The caption with the main table, and the paired differences ("" without them)."""
    main, _, paired = markdown.partition("\nPaired difference to the baseline")
    return main, paired


def table_line(markdown: str, start: str) -> list[str]:
    [line] = [line for line in markdown.splitlines() if line.startswith(start)]
    return [cell.strip() for cell in line.strip("|").split("|")]


def tsv_fields(table) -> dict[tuple[str, str], list[str]]:
    """(experiment, metric) -> the fields after them, from an ablation table's TSV."""
    lines = [line.split("\t") for line in paper_tables.tsv(table).splitlines()[1:]]
    return {(fields[1], fields[2]): fields[3:] for fields in lines}


def row_names(markdown: str) -> list[str]:
    return [
        line.split(" | ")[0].removeprefix("| ")
        for line in markdown.splitlines()
        if line.startswith("| ") and not line.startswith("| row |")
    ]


def test_table_iv_gives_mean_sd_n_and_the_paper_beside_ours_in_the_paper_order():
    table = paper_tables.ablation_table(ABLATION, "synthetic")
    markdown, _ = sections(paper_tables.markdown(table))
    assert markdown.startswith("**Table IV analogue") and "not in absolute value" in markdown
    assert "over the 2 seeds 0, 1" in markdown and "paired t-interval" in markdown
    header = table_line(markdown, "| row |")
    assert row_names(markdown) == [
        "baseline",
        "+CAD+CSD",
        "CAD w/o L_bg",
        "fully supervised (ground truth)",
    ]
    i2crc = dict(zip(header, table_line(markdown, "| +CAD+CSD |")))
    assert i2crc["seg round 1"] == "50.0 ± 14.1 (n=2)"
    assert i2crc["CAM-only, best t"] == "30.0 ± 0.0 (n=2)"
    assert i2crc["pseudo, ignore excluded"] == "—", "no seed has a value"
    paper = [
        cell for name, cell in zip(header, table_line(markdown, "| +CAD+CSD |")) if name == "paper"
    ]
    assert paper == ["68.0", "69.3", "67.2"], "round 1, +LR, +retrain"
    baseline = dict(zip(header, table_line(markdown, "| baseline |")))
    assert baseline["seg round 1"] == "30.0 (n=1)", "one seed without a value"
    assert [
        cell
        for name, cell in zip(header, table_line(markdown, "| CAD w/o L_bg |"))
        if name == "paper"
    ] == ["61.5", "—", "—"]


def test_the_tsv_has_one_line_per_cell_in_percent():
    lines = paper_tables.tsv(paper_tables.ablation_table(ABLATION, "synthetic")).splitlines()
    assert lines[0].split("\t") == [
        "row",
        "experiment",
        "metric",
        "mean",
        "sd",
        "n",
        "paper",
        "vs_baseline_mean",
        "vs_baseline_sd",
        "vs_baseline_n",
        "vs_baseline_ci95_lo",
        "vs_baseline_ci95_hi",
    ]
    assert lines[1].startswith("baseline\tbaseline\tcam_only_miou\t")
    fields = tsv_fields(paper_tables.ablation_table(ABLATION, "synthetic"))
    assert fields["i2crc", "seg_val_round1"] == [
        "50.00",
        "14.14",
        "2",
        "68.0",
        "10.00",
        "0.00",
        "1",
        "—",
        "—",
    ], "one seed with both"
    assert fields["i2crc", "cam_only_miou"] == [
        "30.00",
        "0.00",
        "2",
        "—",
        "0.00",
        "0.00",
        "2",
        "0.00",
        "0.00",
    ]
    assert fields["i2crc", "pseudo_train_miou_ignore_excluded"] == [
        "—",
        "—",
        "0",
        "—",
        "—",
        "—",
        "0",
        "—",
        "—",
    ]
    no_difference = ["—", "—", "0", "—", "—"]
    assert fields["baseline", "cam_only_miou"] == ["30.00", "0.00", "2", "—", *no_difference]
    assert fields["full", "seg_val_round1"] == ["80.00", "0.00", "2", "—", *no_difference]
    assert len(lines) == 1 + 4 * len(paper_tables.TABLE_IV_COLUMNS)


def test_table_v_pairs_labels_before_and_after_refinement():
    markdown, paired = sections(
        paper_tables.markdown(paper_tables.refinement_table(ABLATION, "voc"))
    )
    assert "Ours are on `voc`" in markdown
    assert row_names(markdown) == ["baseline", "+CAD+CSD", "CAD w/o L_bg"], "no fully supervised"
    assert row_names(paired) == ["+CAD+CSD", "CAD w/o L_bg"]
    header = table_line(markdown, "| row |")
    cells = list(zip(header, table_line(markdown, "| +CAD+CSD |")))
    assert cells[2:] == [
        ("ignore excluded, pseudo", "—"),
        ("ignore excluded, refined", "50.0 ± 0.0 (n=2)"),
        ("ignore as background, pseudo", "40.0 ± 0.0 (n=2)"),
        ("paper", "70.7"),
        ("ignore as background, refined", "45.0 ± 0.0 (n=2)"),
        ("paper", "76.1"),
        ("ignored fraction, pseudo", "10.0 ± 0.0 (n=2)"),
        ("ignored fraction, refined", "5.0 ± 0.0 (n=2)"),
    ]


def test_table_viii_takes_each_experiments_lambdas_from_the_config():
    assert paper_tables.sweep_points(LAMBDAS) == [
        ("lambda_ob", 0.0, "sweep_b"),
        ("lambda_ob", 0.0075, "sweep_a"),
        ("lambda_ob", 0.01, "i2crc"),
        ("lambda_bg", 0.025, "i2crc"),
        ("lambda_bg", 0.04, "sweep_c"),
        ("lambda_csd", 0.1, "i2crc"),
        ("lambda_csd", 0.2, "sweep_d"),
    ]
    table = paper_tables.sweep_table(SWEEP, LAMBDAS, "synthetic")
    assert "full" not in {row.keys[2] for row in table.rows}
    assert "Paired difference" not in paper_tables.markdown(table)
    lines = paper_tables.tsv(table).splitlines()
    assert lines[0].split("\t") == [
        "lambda",
        "value",
        "experiment",
        "metric",
        "mean",
        "sd",
        "n",
        "paper",
    ]
    round1 = [line.split("\t") for line in lines if "\tseg_val_round1\t" in line]
    assert [(cells[0], cells[1], cells[2], cells[4], cells[7]) for cells in round1] == [
        ("lambda_ob", "0.0", "sweep_b", "30.00", "—"),
        ("lambda_ob", "0.0075", "sweep_a", "20.00", "66.8"),
        ("lambda_ob", "0.01", "i2crc", "10.00", "68.0"),
        ("lambda_bg", "0.025", "i2crc", "10.00", "68.0"),
        ("lambda_bg", "0.04", "sweep_c", "40.00", "65.9"),
        ("lambda_csd", "0.1", "i2crc", "10.00", "68.0"),
        ("lambda_csd", "0.2", "sweep_d", "50.00", "—"),
    ]


def test_table_iv_has_the_fully_supervised_row_last_and_each_row_as_a_share_of_it():
    markdown, paired = sections(paper_tables.markdown(paper_tables.ablation_table(ABLATION, "voc")))
    header = table_line(markdown, "| row |")
    assert header[-3:] == [
        "seg round 1, % of full",
        "seg retrained refined, % of full",
        "seg retrained unrefined, % of full",
    ], "no paper column for these"
    assert "+LR 69.3 at about 90 %" in markdown, "the paper's share, an estimate"
    full = dict(zip(header, table_line(markdown, "| fully supervised (ground truth) |")))
    assert full["experiment"] == "full" and full["seg round 1"] == "80.0 ± 0.0 (n=2)"
    assert full["CAM-only, best t"] == full["seg round 1, % of full"] == "—"
    i2crc = dict(zip(header, table_line(markdown, "| +CAD+CSD |")))
    assert i2crc["seg round 1, % of full"] == "62.5 ± 17.7 (n=2)", "0.4 and 0.6 of 0.8"
    assert i2crc["seg retrained refined, % of full"] == "75.0 ± 0.0 (n=2)"
    assert "fully supervised" not in paired, "not a method: no paired difference"


def test_tables_iv_and_v_give_the_paired_difference_to_the_baseline():
    table = paper_tables.ablation_table(THREE_SEEDS, "synthetic")
    main, paired = sections(paper_tables.markdown(table))
    assert "over the 3 seeds 0, 1, 2" in main
    assert paired.startswith(" (percentage points): mean [95 % paired t-interval] (n seeds).")
    assert row_names(paired) == ["+CAD+CSD"], "neither the baseline nor the fully supervised row"
    header = table_line(paired, "| row |")
    assert header == ["row", "experiment", *paper_tables.TABLE_IV_COLUMNS.values()]
    i2crc = dict(zip(header, table_line(paired, "| +CAD+CSD |")))
    assert i2crc["seg round 1"] == "+2.0 [-0.5, +4.5] (n=3)", "2 ± 4.302653 · 1 / √3"
    assert i2crc["seg round 1, % of full"] == "+2.5 [-0.6, +5.6] (n=3)", "the same over 0.8"
    assert i2crc["CAM-only, best t"] == "+0.0 [+0.0, +0.0] (n=3)"
    assert i2crc["pseudo, ignore excluded"] == "—", "no seed has a value"
    assert tsv_fields(table)["i2crc", "seg_val_round1"] == [
        "62.00",
        "11.00",
        "3",
        "68.0",
        "2.00",
        "1.00",
        "3",
        "-0.48",
        "4.48",
    ]


def test_the_paper_sweep_value_needs_the_other_lambdas_at_the_papers_defaults():
    assert paper_tables.paper_sweep("lambda_bg", {**CENTRE, "lambda_bg": 0.02}) == {
        "seg_val_round1": 67.3
    }
    assert (
        paper_tables.paper_sweep("lambda_bg", {**CENTRE, "lambda_bg": 0.02, "lambda_ob": 0.0}) == {}
    )


def test_the_papers_lambdas_are_the_i2crc_experiments_defaults():
    """One home, the schema: the paper's λs (§IV-A) in Eq. 8's order, which orders Table VIII."""
    assert list(PAPER_LAMBDAS.items()) == [
        ("lambda_ob", 0.01),
        ("lambda_bg", 0.025),
        ("lambda_csd", 0.1),
    ]
    assert PAPER_LAMBDAS == defaults()["experiments"]["i2crc"]


def test_run_writes_every_table_and_plot(tmp_path):
    ablation, sweep = tmp_path / "summary_ablation.json", tmp_path / "summary_sweep.json"
    ablation.write_text(json.dumps(ABLATION))
    sweep.write_text(json.dumps(SWEEP))
    out_paths = {
        table: {kind: tmp_path / "tables" / f"{table}.{kind}" for kind in ("tsv", "md", "png")}
        for table in ("table4", "table5", "table8")
    }
    paper_tables.run_ablation(
        summary_path=ablation,
        dataset="synthetic",
        out_paths={t: out_paths[t] for t in ("table4", "table5")},
    )
    paper_tables.run_sweep(
        summary_path=sweep, lambdas=LAMBDAS, dataset="synthetic", out_paths=out_paths["table8"]
    )
    for paths in out_paths.values():
        assert paths["md"].read_text().startswith("**Table")
        assert paths["tsv"].read_text().startswith(("row\t", "lambda\t"))
        with Image.open(paths["png"]) as image:
            assert image.size[0] >= 800
