"""The "which difference matters" study (bench/which_difference.py): its reference, its
variants and what it runs before a segmenter is trained."""

from bench import which_difference as study
from i2crc_core.infra.config import deep_update, defaults


def leaves(tree: dict, prefix=()) -> dict:
    """{(section, key, ...): value} of a nested mapping."""
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(leaves(value, (*prefix, key)))
        else:
            flat[(*prefix, key)] = value
    return flat


def at(config: dict, path: tuple):
    for key in path:
        config = config[key]
    return config


def test_the_variant_of_all_adopted_switches_is_the_defaults():
    together = leaves(deep_update(study.EARLIER, study.VARIANTS[study.TOGETHER]))
    assert together == {path: at(defaults(), path) for path in together}


def test_each_switch_changes_its_key_from_the_reference():
    for name, changes in study.SWITCHES.items():
        for path, value in leaves(changes).items():
            before = at(deep_update(defaults(), study.EARLIER), path)
            assert value != before, (name, path)


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
