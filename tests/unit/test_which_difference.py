"""The "which difference matters" study (bench/which_difference.py): its reference, its
variants and what it runs before a segmenter is trained."""

from bench import which_difference as study
from i2crc_core.infra.config import deep_update, defaults
from tests.workflow.rerun_matrix import leaf_keys, value_at


def test_the_variant_of_all_adopted_switches_is_the_defaults():
    together = deep_update(study.EARLIER, study.VARIANTS[study.TOGETHER])
    for key in leaf_keys(together):
        assert value_at(together, key) == value_at(defaults(), key), key


def test_each_switch_changes_its_key_from_the_reference():
    reference = deep_update(defaults(), study.EARLIER)
    for name, changes in study.SWITCHES.items():
        for key in leaf_keys(changes):
            assert value_at(changes, key) != value_at(reference, key), (name, key)


def test_the_defaults_keep_the_papers_cad_weighting():
    (a1,) = [changes for name, changes in study.SWITCHES.items() if name.startswith("A1")]
    assert defaults()["losses"]["cad_weighting"] == "linear"
    assert a1 == {"losses": {"cad_weighting": "squared"}}
    assert "losses" not in study.VARIANTS[study.TOGETHER]


def test_the_segmenter_columns_come_after_the_cheap_ones():
    before, after = study.split(study.ROUND1 + study.ROUND2)
    assert {name for name, _, _ in before} == {"cams", "labels_pseudo"}
    assert {name for name, _, _ in after} == study.SEGMENTER
    assert study.targets([3], before) == [
        f"results/seed3/{row}/metrics/{name}.json"
        for row in study.ROWS
        for name in ("cams", "labels_pseudo")
    ]


def test_only_the_variants_that_change_the_refinement_report_its_round():
    with_round2 = {name for name in study.VARIANTS if study.ROUND2[0] in study.columns(name)}
    assert with_round2 == {"B3 Eq. 10 on multi-class images only", study.TOGETHER}
