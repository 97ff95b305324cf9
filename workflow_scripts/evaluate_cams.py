from i2crc_core.runner import run_stage
from i2crc_core.stages import evaluate

run_stage(
    snakemake.log[0],
    evaluate.cams,
    manifest_path=snakemake.input.manifest,
    cams_path=snakemake.input.cams,
    thresholds=snakemake.params.thresholds,
    out_path=snakemake.output[0],
)
