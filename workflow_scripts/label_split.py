from i2crc_core.runner import run_stage
from i2crc_core.stages import prepare_dataset

run_stage(
    snakemake.log[0],
    prepare_dataset.label_split,
    manifest_path=snakemake.input.manifest,
    split=snakemake.params.split,
    out_path=snakemake.output[0],
)
