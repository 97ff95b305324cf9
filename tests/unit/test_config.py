import pytest
import yaml

from i2crc_core.infra.config import deep_update, validate_config
from i2crc_core.infra.errors import ConfigError

REPO = __import__("pathlib").Path(__file__).resolve().parents[2]


def test_defaults_fill_an_empty_config():
    config = validate_config({})
    assert config["dataset"]["kind"] == "synthetic"
    assert config["experiments"]["i2crc"] == {
        "lambda_ob": 0.01,
        "lambda_bg": 0.025,
        "lambda_csd": 0.1,
    }
    assert config["resources"]["train_classifier"]["gpu"] == 1
    assert config["resources"]["evaluate"]["gpu"] == 0


def _key_paths(mapping: dict, prefix: str = "") -> set[str]:
    paths = set()
    for key, value in mapping.items():
        paths.add(prefix + key)
        if isinstance(value, dict):
            paths |= _key_paths(value, f"{prefix}{key}.")
    return paths


def test_config_yaml_names_every_key_at_the_schema_default():
    written = yaml.safe_load((REPO / "config.yaml").read_text())
    defaults = validate_config({})
    assert sorted(_key_paths(defaults) - _key_paths(written)) == []
    assert validate_config(written) == defaults


def test_partial_section_keeps_other_defaults():
    config = validate_config({"resources": {"train_classifier": {"threads": 4}}})
    assert config["resources"]["train_classifier"] == {
        "threads": 4,
        "mem_mb": 4000,
        "runtime": 720,
        "gpu": 1,
    }


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"classifer": {}}, "unknown key 'classifer'"),
        ({"classifier": {"epoch": 3}}, "unknown key 'classifier.epoch'"),
        ({"classifier": {"epochs": "ten"}}, "'classifier.epochs': 'ten' is not of type 'integer'"),
        ({"classifier": {"epochs": 0}}, "'classifier.epochs': 0 is less than the minimum of 1"),
        ({"segmentation": {"lr": -1}}, "'segmentation.lr'"),
        (
            {"pseudo_labels": {"bg_cam": 1.5}},
            "'pseudo_labels.bg_cam': 1.5 is greater than the maximum of 1",
        ),
        ({"classifier": {"backbone": "resnet9"}}, "'classifier.backbone'"),
        ({"run_experiments": ["nope"]}, "'run_experiments': unknown experiment 'nope'"),
        ({"dataset": {"kind": "voc"}}, "'dataset.root': required"),
        ({"saliency": {"source": "folder"}}, "'saliency.folder': required"),
        ({"segmentation": {"scale_range": [1.5, 0.5]}}, "'segmentation.scale_range'"),
        (
            {"segmentation": {"msc_scales": [0.5, 0.01]}},
            "'segmentation.msc_scales': scale 0.01 makes the 64-pixel crops 0 pixels",
        ),
        (
            {"segmentation": {"scale_step": 0}},
            "'segmentation.scale_step': 0 is less than or equal to the minimum of 0",
        ),
        (
            {"segmentation": {"input_normalisation": "bgr"}},
            "'segmentation.input_normalisation': 'bgr' is not one of ['imagenet', 'caffe_bgr']",
        ),
        (
            {"segmentation": {"inference_fusion": "mean"}},
            "'segmentation.inference_fusion': 'mean' is not one of ['image', 'logits']",
        ),
        ({"experiments": {"x": {"lambda_ob": 1}}}, "'experiments.x'"),
        (
            {"segmentation": {"backbone": "resnet101"}},
            "'segmentation.weights': 'pretrained' (the pretraining stage) exists for backbone "
            "'small' only, not 'resnet101'",
        ),
    ],
)
def test_bad_config_names_the_key(config, message):
    with pytest.raises(ConfigError, match=None) as raised:
        validate_config(config)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_validated_config_has_one_key_order_whatever_order_it_was_written_in():
    first = validate_config({"pseudo_labels": {"bg_cam": 0.4, "score_floor": 0.2}})
    second = validate_config({"pseudo_labels": {"score_floor": 0.2, "bg_cam": 0.4}})
    assert repr(first) == repr(second)
    assert list(first["pseudo_labels"]) == sorted(first["pseudo_labels"])


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"classifier": {"lr": float("nan")}},
            "config key 'classifier.lr': nan is not a finite number",
        ),
        (
            {
                "experiments": {
                    "x": {"lambda_ob": 0.0, "lambda_bg": 0.0, "lambda_csd": float("inf")}
                }
            },
            "config key 'experiments.x.lambda_csd': inf is not a finite number",
        ),
        ({"cams": {"scales": [1.0, float("inf")]}}, "config key 'cams.scales.1': inf is not"),
    ],
)
def test_non_finite_numbers_are_refused_naming_the_key(config, message):
    # JSON Schema's bounds let NaN through (every comparison with it is false), and infinity
    # through a lower bound.
    with pytest.raises(ConfigError) as raised:
        validate_config(config)
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_yaml_nan_is_refused():
    config = yaml.safe_load("segmentation: {lr: .nan}\n")
    with pytest.raises(ConfigError, match="'segmentation.lr': nan is not a finite number"):
        validate_config(config)


def test_command_line_texts_are_typed_where_the_schema_wants_no_string():
    # What Snakemake hands over for --config 'classifier={epochs: 3, lr: 1e-3}' 'seeds=[0,1]'
    # 'dataset={root: null}' 'experiments={x: {...}}': YAML's BaseLoader types nothing.
    config = validate_config(
        {
            "seeds": ["0", "1"],
            "classifier": {"epochs": "3", "lr": "1e-3", "weights": "null"},
            "cams": {"scales": ["1.0", "0.5"], "flip": "true"},
            "experiments": {
                "baseline": {"lambda_ob": "0", "lambda_bg": "0", "lambda_csd": "0.1"},
                "i2crc": {"lambda_ob": "0.01", "lambda_bg": "0.025", "lambda_csd": "0.1"},
            },
            "ablation_experiments": ["baseline", "i2crc"],
        }
    )
    assert config["seeds"] == [0, 1]
    assert (config["classifier"]["epochs"], config["classifier"]["lr"]) == (3, 0.001)
    assert config["classifier"]["weights"] is None
    assert config["cams"] == {**config["cams"], "scales": [1.0, 0.5], "flip": True}
    assert config["experiments"]["baseline"]["lambda_csd"] == 0.1


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"classifier": {"epochs": "3.5"}}, "'classifier.epochs': 3.5 is not of type 'integer'"),
        ({"classifier": {"epochs": "[3]"}}, "'classifier.epochs': '[3]' is not of type 'integer'"),
        ({"device": "3"}, "'device': '3' is not one of"),
        ({"dataset": {"train_split": "2007"}}, None),  # a text where text is wanted stays one
    ],
)
def test_typing_keeps_what_the_schema_must_judge(config, message):
    if message is None:
        assert validate_config(config)["dataset"]["train_split"] == "2007"
        return
    with pytest.raises(ConfigError) as raised:
        validate_config(config)
    assert message in str(raised.value)


def test_deep_update_merges_mappings_and_replaces_the_rest():
    base = {"classifier": {"epochs": 3, "lr": 0.1}, "seeds": [0, 1], "saliency": None}
    changes = {
        "classifier": {"epochs": 5},
        "seeds": [2],
        "saliency": {"source": "url"},
        "dataset": {"kind": "voc"},
    }
    merged = deep_update(base, changes)
    assert merged == {
        "classifier": {"epochs": 5, "lr": 0.1},
        "seeds": [2],
        "saliency": {"source": "url"},
        "dataset": {"kind": "voc"},
    }
    # neither argument changes, and the result shares no mapping of `changes`
    assert base == {"classifier": {"epochs": 3, "lr": 0.1}, "seeds": [0, 1], "saliency": None}
    merged["dataset"]["kind"] = "coco"
    assert changes["dataset"] == {"kind": "voc"}


def test_an_integral_number_where_an_integer_is_wanted_becomes_that_integer():
    # `classifier: {epochs: 1.0}` in a config file, and --config 'pretraining={epochs: 1.0}'
    # (text until typed): JSON Schema takes 1.0 for an integer, `range(1.0)` does not.
    config = validate_config(
        {
            "classifier": {"epochs": 2.0, "lr_decay_epochs": [1.0, 2]},
            "pretraining": {"epochs": "1.0"},
            "seeds": [3.0],
        }
    )
    for value in (
        config["classifier"]["epochs"],
        *config["classifier"]["lr_decay_epochs"],
        config["pretraining"]["epochs"],
        *config["seeds"],
    ):
        assert type(value) is int
    assert config["classifier"]["lr_decay_epochs"] == [1, 2] and config["seeds"] == [3]
    assert type(validate_config({"classifier": {"lr": 1}})["classifier"]["lr"]) is int, (
        "a number key keeps what it was given"
    )


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"classifier": {"epochs": 1e12}},
            "config key 'classifier.epochs': 1e+12 is beyond 2147483647, the largest an integer "
            "key takes",
        ),
        (
            {"pretraining": {"epochs": "1e12"}},
            "config key 'pretraining.epochs': 1e+12 is beyond 2147483647",
        ),
        ({"seeds": [0, 2**40]}, f"config key 'seeds.1': {2**40} is beyond 2147483647"),
        ({"classifier": {"epochs": 1.5}}, "config key 'classifier.epochs': 1.5 is not of type"),
    ],
)
def test_a_fractional_or_boundless_integer_is_refused_naming_the_key(config, message):
    with pytest.raises(ConfigError) as raised:
        validate_config(config)
    assert str(raised.value).startswith(message) and "\n" not in str(raised.value)
