"""The paper's Tables IV, V and VIII made from the summaries over seeds."""

import json

from PIL import Image

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


def row(seg: float, **columns) -> dict:
    return {"cam_only_miou": 0.3, "cam_only_threshold": 0.2, "cam_only_fixed_miou": 0.25,
            "pseudo_train_miou_ignore_excluded": None, "pseudo_train_miou_ignore_as_bg": 0.4,
            "pseudo_train_ignored_fraction": 0.1, "refined_train_miou_ignore_excluded": 0.5,
            "refined_train_miou_ignore_as_bg": 0.45, "refined_train_ignored_fraction": 0.05,
            "seg_val_round1": seg, "seg_val_retrain_refined": 0.6,
            "seg_val_retrain_unrefined": 0.55, **columns}


ABLATION = over_seeds({
    0: {"cad_no_bg": row(0.2), "i2crc": row(0.4), "baseline": row(0.3)},
    1: {"cad_no_bg": row(0.2), "i2crc": row(0.6), "baseline": row(0.3, seg_val_round1=None)},
})
SWEEP = over_seeds({0: {name: row(0.1 * index) for index, name in enumerate(LAMBDAS, start=1)},
                    1: {name: row(0.1 * index) for index, name in enumerate(LAMBDAS, start=1)}})


def table_line(markdown: str, start: str) -> list[str]:
    [line] = [line for line in markdown.splitlines() if line.startswith(start)]
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_table_iv_gives_mean_sd_n_and_the_paper_beside_ours_in_the_paper_order():
    table = paper_tables.ablation_table(ABLATION, "synthetic")
    markdown = paper_tables.markdown(table)
    assert markdown.startswith("**Table IV analogue") and "not in absolute value" in markdown
    header = table_line(markdown, "| row |")
    rows = [line.split(" | ")[0] for line in markdown.splitlines()[4:]]
    assert rows == ["| baseline", "| +CAD+CSD", "| CAD w/o L_bg"]
    i2crc = dict(zip(header, table_line(markdown, "| +CAD+CSD |")))
    assert i2crc["seg round 1"] == "50.0 ± 14.1 (n=2)"
    assert i2crc["CAM-only, best t"] == "30.0 ± 0.0 (n=2)"
    assert i2crc["pseudo, ignore excluded"] == "—", "no seed has a value"
    paper = [cell for name, cell in zip(header, table_line(markdown, "| +CAD+CSD |"))
             if name == "paper"]
    assert paper == ["68.0", "69.3", "67.2"], "round 1, +LR, +retrain"
    baseline = dict(zip(header, table_line(markdown, "| baseline |")))
    assert baseline["seg round 1"] == "30.0 (n=1)", "one seed without a value"
    assert [cell for name, cell in zip(header, table_line(markdown, "| CAD w/o L_bg |"))
            if name == "paper"] == ["61.5", "—", "—"]


def test_the_tsv_has_one_line_per_cell_in_percent():
    lines = paper_tables.tsv(paper_tables.ablation_table(ABLATION, "synthetic")).splitlines()
    assert lines[0].split("\t") == ["row", "experiment", "metric", "mean", "sd", "n", "paper"]
    assert "+CAD+CSD\ti2crc\tseg_val_round1\t50.00\t14.14\t2\t68.0" in lines
    assert "+CAD+CSD\ti2crc\tpseudo_train_miou_ignore_excluded\t—\t—\t0\t—" in lines
    assert len(lines) == 1 + 3 * len(paper_tables.TABLE_IV_COLUMNS)


def test_table_v_pairs_labels_before_and_after_refinement():
    markdown = paper_tables.markdown(paper_tables.refinement_table(ABLATION, "voc"))
    assert "Ours are on `voc`" in markdown
    header = table_line(markdown, "| row |")
    cells = list(zip(header, table_line(markdown, "| +CAD+CSD |")))
    assert cells[2:] == [
        ("ignore excluded, pseudo", "—"), ("ignore excluded, refined", "50.0 ± 0.0 (n=2)"),
        ("ignore as background, pseudo", "40.0 ± 0.0 (n=2)"), ("paper", "70.7"),
        ("ignore as background, refined", "45.0 ± 0.0 (n=2)"), ("paper", "76.1"),
        ("ignored fraction, pseudo", "10.0 ± 0.0 (n=2)"),
        ("ignored fraction, refined", "5.0 ± 0.0 (n=2)")]


def test_table_viii_takes_each_experiments_lambdas_from_the_config():
    assert paper_tables.sweep_points(LAMBDAS) == [
        ("lambda_ob", 0.0, "sweep_b"), ("lambda_ob", 0.0075, "sweep_a"), ("lambda_ob", 0.01, "i2crc"),
        ("lambda_bg", 0.025, "i2crc"), ("lambda_bg", 0.04, "sweep_c"),
        ("lambda_csd", 0.1, "i2crc"), ("lambda_csd", 0.2, "sweep_d")]
    lines = paper_tables.tsv(paper_tables.sweep_table(SWEEP, LAMBDAS, "synthetic")).splitlines()
    round1 = [line.split("\t") for line in lines if "\tseg_val_round1\t" in line]
    assert [(cells[0], cells[1], cells[2], cells[4], cells[7]) for cells in round1] == [
        ("lambda_ob", "0.0", "sweep_b", "30.00", "—"),
        ("lambda_ob", "0.0075", "sweep_a", "20.00", "66.8"),
        ("lambda_ob", "0.01", "i2crc", "10.00", "68.0"),
        ("lambda_bg", "0.025", "i2crc", "10.00", "68.0"),
        ("lambda_bg", "0.04", "sweep_c", "40.00", "65.9"),
        ("lambda_csd", "0.1", "i2crc", "10.00", "68.0"),
        ("lambda_csd", "0.2", "sweep_d", "50.00", "—")]


def test_the_paper_sweep_value_needs_the_other_lambdas_at_the_papers_defaults():
    assert paper_tables.paper_sweep("lambda_bg", {**CENTRE, "lambda_bg": 0.02}) == {
        "seg_val_round1": 67.3}
    assert paper_tables.paper_sweep("lambda_bg", {**CENTRE, "lambda_bg": 0.02, "lambda_ob": 0.0}) == {}


def test_run_writes_every_table_and_plot(tmp_path):
    ablation, sweep = tmp_path / "summary_ablation.json", tmp_path / "summary_sweep.json"
    ablation.write_text(json.dumps(ABLATION))
    sweep.write_text(json.dumps(SWEEP))
    out_paths = {table: {kind: tmp_path / "tables" / f"{table}.{kind}" for kind in ("tsv", "md", "png")}
                 for table in ("table4", "table5", "table8")}
    paper_tables.run_ablation(summary_path=ablation, dataset="synthetic",
                              out_paths={t: out_paths[t] for t in ("table4", "table5")})
    paper_tables.run_sweep(summary_path=sweep, lambdas=LAMBDAS, dataset="synthetic",
                           out_paths=out_paths["table8"])
    for paths in out_paths.values():
        assert paths["md"].read_text().startswith("**Table")
        assert paths["tsv"].read_text().startswith(("row\t", "lambda\t"))
        with Image.open(paths["png"]) as image:
            assert image.size[0] >= 800
