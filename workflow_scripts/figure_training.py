from i2crc_core.runner import run_stage
from i2crc_core.stages import figures

experiments = snakemake.params.experiments
run_stage(
    snakemake.log[0],
    figures.training_figure,
    classifier_curves=dict(zip(experiments, snakemake.input.classifier)),
    segmentation_curves={
        "round 1 (pseudo labels)": dict(zip(experiments, snakemake.input.pseudo)),
        "round 2 (refined labels)": dict(zip(experiments, snakemake.input.refined)),
    },
    out_path=snakemake.output[0],
)
