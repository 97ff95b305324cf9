from i2crc_core.runner import run_stage
from i2crc_core.stages import synthetic_dataset

run_stage(
    snakemake.log[0],
    synthetic_dataset.run,
    root=snakemake.output[0],
    num_classes=snakemake.params.num_classes,
    seed=snakemake.params.seed,
    **snakemake.params.synthetic,
)
