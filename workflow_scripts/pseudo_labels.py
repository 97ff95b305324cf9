from i2crc_core.runner import run_stage
from i2crc_core.stages import pseudo_labels

run_stage(
    snakemake.log[0],
    pseudo_labels.run,
    manifest_path=snakemake.input.manifest,
    cams_path=snakemake.input.cams,
    saliency_dir=snakemake.input.saliency,
    out_dir=snakemake.output[0],
    **snakemake.params.thresholds,
)
