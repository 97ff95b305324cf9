from i2crc_core.runner import run_stage
from i2crc_core.stages import evaluate

run_stage(
    snakemake.log[0],
    evaluate.labels,
    manifest_path=snakemake.input.manifest,
    label_dir=snakemake.input.labels,
    split=snakemake.params.split,
    out_path=snakemake.output[0],
)
