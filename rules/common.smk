import sys
from pathlib import Path

from i2crc_core.infra.config import FULL_SUPERVISION, validate_config
from i2crc_core.method.crf import settings as crf_settings
from i2crc_core.data.data_fingerprint import dataset_fingerprint, folder_fingerprint
from i2crc_core.infra.errors import ConfigError, SchedulerError
from i2crc_core.infra.fingerprint import script_fingerprint
from i2crc_core.data.layout import VOC_DIRS
from i2crc_core.data.manifest import ROLES
from i2crc_core.runner import jobs_import_from
from i2crc_core.infra.scheduler import check_slurm_controller
import pandas as pd
from snakemake.utils import Paramspace

try:
    validate_config(config)
except ConfigError as error:
    # A user mistake: one line, no traceback.
    sys.exit(f"i2crc error: {error}")


onstart:
    # Before the first submission, where the SLURM executor's own errors would run to forty
    # lines (i2crc_core/infra/scheduler.py).
    if workflow.executor_plugin.name == "slurm":
        try:
            check_slurm_controller()
        except SchedulerError as error:
            sys.exit(f"i2crc error: {error}")


# Jobs import i2crc_core from this folder, whichever environment runs them: a conda env made
# by --sdm conda holds only the dependencies (envs/i2crc.yaml).
jobs_import_from(workflow.basedir)

OUT = config["output_dir"]
SEEDS = config["seeds"]
# What a seed decides lives under RUN (one DAG for all seeds); downloads, ImageNet weights and a
# real dataset do not depend on it and live under OUT, once.
RUN = f"{OUT}/seed{{seed}}"
# The dense CRF's settings where segmentation predictions are made, None when it is off: the
# parameters of a disabled CRF rerun nothing.
CRF = crf_settings(config["segmentation"]["crf"])
# Paper Table VIII: one λ varied at a time around experiments.i2crc's. A point equal to a
# configured experiment is that experiment (λ_bg = 0 is cad_no_bg, λ_csd = 0 is cad), trained
# once; the others are named by Snakemake's Paramspace (e.g.
# lambda_bg-0.025_lambda_csd-0.1_lambda_ob-0.0075) and run like any experiment.
SWEEP_POINTS = [
    {**config["experiments"]["i2crc"], name: value}
    for name, values in config["lambda_sweep"].items()
    for value in values
]
LAMBDA_SWEEP = Paramspace(
    pd.DataFrame(
        [
            weights
            for weights in SWEEP_POINTS
            if weights not in config["experiments"].values()
        ],
        columns=list(config["experiments"]["i2crc"]),
    ).drop_duplicates(),
    filename_params="*",
    param_sep="-",
)
# Table VIII's experiments: i2crc (the paper's defaults), the configured ones on the sweep, the rest.
SWEEP_EXPERIMENTS = [
    "i2crc",
    *(
        experiment
        for experiment, weights in config["experiments"].items()
        if weights in SWEEP_POINTS and experiment != "i2crc"
    ),
    *LAMBDA_SWEEP.instance_patterns,
]
# Every experiment by name: the configured ones and the sweep's points, as loss weights.
EXPERIMENTS = {
    **config["experiments"],
    **dict(
        zip(LAMBDA_SWEEP.instance_patterns, LAMBDA_SWEEP.dataframe.to_dict("records"))
    ),
}
SYNTHETIC = config["dataset"]["kind"] == "synthetic"
# The synthetic benchmark is drawn from the seed; a real dataset is not.
DATA = RUN if SYNTHETIC else OUT
MANIFEST = f"{DATA}/dataset/manifest.json"
SYNTHETIC_ROOT = f"{DATA}/dataset/synthetic"
# Fetched maps are read like a folder of maps.
SALIENCY_SOURCE = (
    "folder" if config["saliency"]["source"] == "url" else config["saliency"]["source"]
)
# Simulated maps are drawn from the seed; others depend only on the dataset's images.
SALIENCY_ROOT = RUN if SALIENCY_SOURCE == "simulated" else DATA
SALIENCY_MAPS = f"{SALIENCY_ROOT}/saliency/maps"
# The benchmark's stand-in for ImageNet weights (rules/pretraining.smk), drawn from the seed.
PRETRAINED_BACKBONE = f"{RUN}/pretraining/backbone.pth"
CAM_SHARD = f"{RUN}/{{experiment}}/cams/shards/{{scatteritem}}.h5"
# Segmentation rounds, named after the labels they train on: CAM pseudo labels (round 1),
# refined labels (Eq. 9-11), round-1 predictions as they are (the ablation "retrain without
# refinement"), or the ground-truth masks (experiment FULL_SUPERVISION only: the ceiling).
LABEL_SOURCES = {
    "pseudo": f"{RUN}/{{experiment}}/labels/pseudo",
    "refined": f"{RUN}/{{experiment}}/labels/refined",
    "predicted": f"{RUN}/{{experiment}}/segmentation/pseudo/pred_train",
    "truth": (
        f"{SYNTHETIC_ROOT}/{VOC_DIRS['mask_dir']}"
        if SYNTHETIC
        else f"{config['dataset']['root']}/{config['dataset']['mask_dir']}"
    ),
}


wildcard_constraints:
    experiment="[A-Za-z0-9_.-]{1,64}",
    labels="|".join(LABEL_SOURCES),
    split="train|val",
    seed=r"\d+",
    scatteritem=r"\d+-of-\d+",
    # The backbones that torchvision publishes ImageNet weights for (i2crc_core/nets/weights.py).
    backbone="vgg16|resnet101",


# Local rules (`localrule: True`) run where Snakemake runs, never as cluster jobs: downloads
# (compute nodes often have no internet) and jobs of seconds to a minute (which would wait in a
# queue longer than they work).

# Every rule's jobs run in this environment where Snakemake deploys one (--sdm conda).
CONDA_ENV = "../envs/i2crc.yaml"


def log_file(job, root=RUN):
    """A job's log: <root>/logs/<job>.log, <job> being the rule's name and its wildcards."""
    return f"{root}/logs/{job}.log"


def benchmark_file(job, root=RUN):
    """A job's Snakemake benchmark, named as its log: <root>/benchmarks/<job>.tsv."""
    return f"{root}/benchmarks/{job}.tsv"


def code(script):
    """Fingerprint of the library code that workflow_scripts/<script>.py reaches: editing a
    module reruns the rules whose scripts import it. Pass the rule's own script name."""
    return script_fingerprint(
        Path(workflow.basedir) / "workflow_scripts" / f"{script}.py"
    )


def training_settings(section, *, operational=()):
    """The keys of `config[section]` that decide what a training stage learns. `operational`
    keys change only how it runs: the script reads them from the config, so that changing them
    reruns nothing. Only SGD has a momentum, Nesterov's variant and learning-rate
    multipliers."""
    settings = {k: v for k, v in config[section].items() if k not in operational}
    if settings["optimizer"] != "sgd":
        settings.update(momentum=None, nesterov=None, lr_multipliers=None)
    return settings


def weights_input(section):
    """The ImageNet weights link for "imagenet", the pretraining stage's backbone for
    "pretrained", else no input."""
    settings = config[section]
    if settings["weights"] == "imagenet":
        return f"{OUT}/weights/{settings['backbone']}_imagenet.pth"
    if settings["weights"] == "pretrained":
        return PRETRAINED_BACKBONE
    return []


def weights_param(section):
    """What the training stage loads: the fetched ImageNet file, the pretrained backbone, a
    local path, or None."""
    return lambda wildcards, input: input.weights or config[section]["weights"]


def loss_weights(wildcards):
    """The experiment's λ of Eq. 8, and losses.cad_weighting where a CAD weight is not 0: an
    experiment without CAD does not read it, so changing it reruns none of those."""
    weights = EXPERIMENTS[wildcards.experiment]
    if weights["lambda_ob"] or weights["lambda_bg"]:
        weights = {**weights, **config["losses"]}
    return weights


def label_dir(wildcards):
    return LABEL_SOURCES[wildcards.labels].format(
        experiment=wildcards.experiment, seed=wildcards.seed
    )


def label_input(wildcards):
    """The label folder as an input. The ground truth is not one (the manifest, which every
    training reads, stands for the dataset it was checked from)."""
    return [] if wildcards.labels == "truth" else label_dir(wildcards)


def threads_of(stage):
    return config["resources"][stage]["threads"]


def resources_of(stage):
    spec = config["resources"][stage]
    return {"mem_mb": spec["mem_mb"], "runtime": spec["runtime"], "gpu": spec["gpu"]}


def seed_param(wildcards):
    return int(wildcards.seed)


def summary_inputs(metrics, sidecars):
    """An input function: a summary's metrics files, for each (experiments, metric names) of
    `metrics`, and the sidecars of the models behind them, for each (experiments, model
    folders) of `sidecars`, in the job's seed."""

    def inputs(wildcards):
        named = {
            f"{experiment}__{name}": f"{RUN}/{experiment}/metrics/{name}.json"
            for experiments, names in metrics
            for experiment in experiments
            for name in names
        }
        named.update(
            {
                f"sidecar__{experiment}__{'_'.join(Path(model).parts)}": (
                    f"{RUN}/{experiment}/{model}/model.json"
                )
                for experiments, models in sidecars
                for experiment in experiments
                for model in models
            }
        )
        return {key: path.format(seed=wildcards.seed) for key, path in named.items()}

    return inputs
