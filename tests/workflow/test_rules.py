"""The rule files follow the house conventions: every rule with a script logs and benchmarks
itself, and fingerprints the library code of its own script."""

import re

import pytest

from tests.helpers.workflow_project import rule_bodies

RULES = rule_bodies()
SCRIPTED = {name: body for name, body in RULES.items() if "script:" in body}


def test_the_rule_files_were_read():
    assert {
        "train_classifier",
        "extract_cams",
        "target",
        'f"{target}_seeds"',
        "fetch_saliency",
    } <= set(SCRIPTED)


@pytest.mark.parametrize("rule", sorted(SCRIPTED))
def test_rule_logs_benchmarks_and_fingerprints_its_own_script(rule):
    body = SCRIPTED[rule]
    script = re.search(r'script:\s*"\.\./workflow_scripts/(\w+)\.py"', body).group(1)
    assert re.search(rf'code=code\("{script}"\)', body), f"rule {rule}: code() must name {script}"
    assert re.search(r"\n +log:", body) and re.search(r"\n +benchmark:", body)
