"""The rule graph pictured in the README (docs/images/rulegraph.dot, rendered to .svg) is the
workflow's: the same rules and the same edges as `snakemake --rulegraph` on the default config.

Node numbers and colours are Snakemake's bookkeeping and the order of the edges varies from run
to run, so the graphs are compared as sets of (rule, rule) edges by name.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOT = REPO / "docs/images/rulegraph.dot"
SNAKEMAKE = Path(sys.executable).parent / "snakemake"


def rules_and_edges(dot: str) -> tuple[set[str], set[tuple[str, str]]]:
    names = dict(re.findall(r'^\s*(\d+)\[label = "([^"]+)"', dot, flags=re.MULTILINE))
    pairs = re.findall(r"^\s*(\d+) -> (\d+)", dot, flags=re.MULTILINE)
    edges = {(names[a], names[b]) for a, b in pairs}
    return set(names.values()), edges


def test_the_pictured_rule_graph_is_the_workflows(tmp_path):
    shutil.copy(REPO / "config.yaml", tmp_path)
    result = subprocess.run(
        [str(SNAKEMAKE), "--snakefile", str(REPO / "Snakefile"), "--rulegraph"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    now, pictured = rules_and_edges(result.stdout), rules_and_edges(DOT.read_text())
    assert len(now[0]) >= 20 and ("train_classifier", "extract_cams") in now[1]
    assert now == pictured, (
        "docs/images/rulegraph.dot is stale; regenerate it and its SVG as "
        'docs/development.md §"What keeps the documentation true" says: '
        f"rules added {now[0] - pictured[0]}, removed {pictured[0] - now[0]}; "
        f"edges added {now[1] - pictured[1]}, removed {pictured[1] - now[1]}"
    )
    svg_labels = set(
        re.findall(r">([\w]+)</text>", (REPO / "docs/images/rulegraph.svg").read_text())
    )
    assert svg_labels == pictured[0], "docs/images/rulegraph.svg is not rendered from the .dot"


def test_the_comparison_sees_a_missing_edge():
    dot = DOT.read_text()
    rules, edges = rules_and_edges(dot)
    line = re.search(r"^\s*(\d+) -> (\d+)\n", dot, flags=re.MULTILINE)
    names = dict(re.findall(r'^\s*(\d+)\[label = "([^"]+)"', dot, flags=re.MULTILINE))
    assert rules_and_edges(dot.replace(line.group(0), "", 1)) == (
        rules,
        edges - {(names[line.group(1)], names[line.group(2)])},
    )
