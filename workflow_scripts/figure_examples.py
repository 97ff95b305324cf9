from i2crc_core.runner import run_stage
from i2crc_core.stages import figures

run_stage(
    snakemake.log[0],
    figures.examples_figure,
    manifest_path=snakemake.input.manifest,
    saliency_dir=snakemake.input.saliency,
    cams_path=snakemake.input.cams,
    pseudo_dir=snakemake.input.pseudo,
    refined_dir=snakemake.input.refined,
    model_path=snakemake.input.model,
    scales=snakemake.params.scales,
    fusion=snakemake.params.fusion,
    crf=snakemake.params.crf,
    num_images=snakemake.params.num_images,
    out_path=snakemake.output[0],
)
