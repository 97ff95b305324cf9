from i2crc_core.runner import run_stage
from i2crc_core.stages import evaluate

run_stage(
    snakemake.log[0],
    evaluate.cams,
    manifest_path=snakemake.input.manifest,
    cams_path=snakemake.input.cams,
    label_split_path=snakemake.input.label_split,
    thresholds=snakemake.params.thresholds,
    fixed_threshold=snakemake.params.fixed_threshold,
    out_path=snakemake.output[0],
)
