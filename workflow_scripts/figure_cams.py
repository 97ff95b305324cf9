from i2crc_core.runner import run_stage
from i2crc_core.stages import figures

run_stage(
    snakemake.log[0],
    figures.cams_figure,
    manifest_path=snakemake.input.manifest,
    cam_paths=dict(zip(snakemake.params.experiments, snakemake.input.cams)),
    num_images=snakemake.params.num_images,
    out_path=snakemake.output[0],
)
