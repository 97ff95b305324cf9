"""Validation of the pipeline configuration against its JSON schema.

The schema (`schemas/config.schema.yaml`) holds every default; `validate_config` fills them
in place and turns the first violation into one `ConfigError` line naming the key, instead
of a multi-line schema dump.
"""

import math
from pathlib import Path

import jsonschema
import yaml

from .errors import ConfigError

SCHEMA_PATH = Path(__file__).parent / "schemas" / "config.schema.yaml"
# The segmenter trained on the ground-truth masks: the fully supervised ceiling that every
# summary reports beside the weakly supervised rows (docs/method.md §7).
FULL_SUPERVISION = "full"


def _key_path(error: jsonschema.ValidationError) -> str:
    return ".".join(str(part) for part in error.absolute_path) or "<top level>"


def _check_schema(config: dict, schema: dict) -> None:
    errors = sorted(
        jsonschema.Draft202012Validator(schema).iter_errors(config),
        key=lambda error: list(map(str, error.absolute_path)),
    )
    if errors:
        error = errors[0]
        if error.validator == "additionalProperties":
            parent = "".join(f"{part}." for part in error.absolute_path)
            unknown = sorted(set(error.instance) - set(error.schema.get("properties", {})))
            names = ", ".join(f"'{parent}{key}'" for key in unknown)
            raise ConfigError(
                f"config: unknown key {names} (check the spelling against config.yaml)"
            )
        raise ConfigError(f"config key '{_key_path(error)}': {error.message}")


# The largest value of an integer key: far above any count, size, step or seed of a run (1e12
# epochs is a slip, and would run for ever), and what a C int holds, as some of the libraries
# that take these numbers do (OpenCV's image sizes).
MAX_INTEGER = 2**31 - 1


def _typed(value, schema: dict, definitions: dict, key: str = ""):
    """`value` with each text that stands where the schema wants no string read as YAML, and
    each integral number where it wants an integer made one.

    Snakemake reads a nested `--config` value (`'classifier={epochs: 3}'`, `'seeds=[0,1]'`)
    with YAML's BaseLoader, which types nothing: 3 arrives as '3', null as 'null'. PyYAML also
    reads `1e-3` (no dot) as text; as a number it is meant. Other texts the schema allows stay
    text; 'null' is null where null is allowed. JSON Schema takes 1.0 for an integer, which
    `range` and the DataLoader do not: an integral number becomes the integer (a fractional one
    fails the schema), and one beyond MAX_INTEGER is a ConfigError naming `key`."""
    while "$ref" in schema:
        schema = {
            **definitions[schema["$ref"].rsplit("/", 1)[-1]],
            **{k: v for k, v in schema.items() if k != "$ref"},
        }
    if isinstance(value, dict):
        extra = schema.get("additionalProperties")
        properties = schema.get("properties", {})
        return {
            name: _typed(
                item,
                properties.get(name, extra if isinstance(extra, dict) else {}),
                definitions,
                f"{key}.{name}" if key else str(name),
            )
            for name, item in value.items()
        }
    if isinstance(value, list):
        items = schema.get("items", {})
        return [_typed(item, items, definitions, f"{key}.{i}") for i, item in enumerate(value)]
    types = schema.get("type", [])
    types = [types] if isinstance(types, str) else types
    if isinstance(value, str) and "null" in types and value in ("null", "~"):
        return None
    if isinstance(value, str) and types and "string" not in types:
        value = _from_text(value, types)
    if "integer" in types and "number" not in types:
        value = _integer(value, key)
    return value


def _from_text(value: str, types: list):
    try:
        typed = yaml.safe_load(value)
    except yaml.YAMLError:
        return value
    if isinstance(typed, str) and {"number", "integer"} & set(types):
        try:
            typed = float(value)
        except ValueError:
            return value
    return value if isinstance(typed, (dict, list, str)) else typed


def _integer(value, key: str):
    given = value
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INTEGER:
        raise ConfigError(
            f"config key '{key}': {f'{given:g}' if isinstance(given, float) else given} is "
            f"beyond {MAX_INTEGER}, the largest an integer key takes"
        )
    return value


def _check_finite(value, key: str = "") -> None:
    """Refuse NaN and infinity anywhere in `value`: JSON Schema's `type: number` and its bounds
    let them through (every comparison with NaN is false), and YAML writes them `.nan`, `.inf`."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"config key '{key}': {value} is not a finite number")
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return
    for name, item in items:
        _check_finite(item, f"{key}.{name}" if key else str(name))


def _check_cross_references(config: dict) -> None:
    experiments = config["experiments"]
    if FULL_SUPERVISION in experiments:
        raise ConfigError(
            f"config key 'experiments': '{FULL_SUPERVISION}' is reserved for the segmenter "
            "trained on the ground truth (the fully supervised row); rename the experiment"
        )
    for key in ("run_experiments", "ablation_experiments"):
        for name in config[key]:
            if name not in experiments:
                raise ConfigError(
                    f"config key '{key}': unknown experiment '{name}' "
                    f"(defined: {', '.join(sorted(experiments))})"
                )
    dataset = config["dataset"]
    if dataset["kind"] != "synthetic" and not dataset["root"]:
        raise ConfigError(
            f"config key 'dataset.root': required for dataset.kind '{dataset['kind']}'"
        )
    if config["saliency"]["source"] == "folder" and not config["saliency"]["folder"]:
        raise ConfigError("config key 'saliency.folder': required when saliency.source is 'folder'")
    if config["saliency"]["source"] == "url" and not config["saliency"]["url"]:
        raise ConfigError("config key 'saliency.url': required when saliency.source is 'url'")
    if dataset["kind"] == "synthetic" and config["saliency"]["source"] in ("folder", "url"):
        raise ConfigError(
            f"config key 'saliency.source': '{config['saliency']['source']}' needs a dataset "
            "whose maps exist; "
            "the synthetic benchmark uses 'simulated' or an OpenCV method"
        )
    for section in ("classifier", "segmentation"):
        backbone = config[section]["backbone"]
        if config[section]["weights"] == "pretrained" and backbone != "small":
            raise ConfigError(
                f"config key '{section}.weights': 'pretrained' (the pretraining stage) exists "
                f"for backbone 'small' only, not '{backbone}'; use 'imagenet', a .pth path, or null"
            )
    segmentation = config["segmentation"]
    low, high = segmentation["scale_range"]
    if low > high:
        raise ConfigError(f"config key 'segmentation.scale_range': {low} > {high}")
    crop = segmentation["crop_size"]
    for scale in segmentation["msc_scales"] or ():
        if math.floor(crop * scale) < 1:
            raise ConfigError(
                f"config key 'segmentation.msc_scales': scale {scale} makes the {crop}-pixel "
                "crops 0 pixels"
            )


def _sort_keys(mapping: dict) -> None:
    """Order every mapping's keys alphabetically, in place."""
    items = sorted(mapping.items())
    mapping.clear()
    for key, value in items:
        if isinstance(value, dict):
            _sort_keys(value)
        mapping[key] = value


def validate_config(config: dict) -> dict:
    """Validate `config` in place, fill the schema's defaults, and return it with its keys in
    one canonical order: Snakemake compares params as text, and the order of merged config
    keys depends on which file named them first, so without it moving a key between config
    files would rerun the stages that read it."""
    from snakemake.utils import validate as snakemake_validate

    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    config.update(_typed(config, schema, schema["definitions"]))
    _check_schema(config, schema)
    _check_finite(config)
    snakemake_validate(config, str(SCHEMA_PATH), set_default=True)
    _check_cross_references(config)
    _sort_keys(config)
    return config


def deep_update(base: dict, changes: dict) -> dict:
    """`changes` laid over `base`, as a config file over the ones before it: a mapping merges
    key by key into the mapping it replaces, anything else replaces. A new mapping; neither
    argument changes (a mapping of `changes` is copied)."""
    merged = dict(base)
    for key, value in changes.items():
        current = base.get(key)
        merged[key] = (
            deep_update(current if isinstance(current, dict) else {}, value)
            if isinstance(value, dict)
            else value
        )
    return merged


def schema_default(key: str):
    """The schema's default of the top-level `key` as the schema writes it, its mappings' keys
    in the schema's order (`defaults` sorts them), without validating a config."""
    return yaml.safe_load(SCHEMA_PATH.read_text())["properties"][key]["default"]


def defaults() -> dict:
    """Every key at its schema default: the values for calling the library outside the
    pipeline, e.g. `pseudo_label(cams, ids, saliency, **defaults()["pseudo_labels"])`."""
    return validate_config({})
