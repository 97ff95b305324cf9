from i2crc_core.runner import run_stage
from i2crc_core.stages import refine_labels

run_stage(
    snakemake.log[0],
    refine_labels.run,
    manifest_path=snakemake.input.manifest,
    prediction_dir=snakemake.input.predictions,
    initial_dir=snakemake.input.initial,
    out_dir=snakemake.output[0],
    **snakemake.params.refinement,
)
