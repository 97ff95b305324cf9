from i2crc_core.runner import run_stage
from i2crc_core.stages import assets

run_stage(
    snakemake.log[0],
    assets.imagenet_weights,
    backbone=snakemake.wildcards.backbone,
    link_path=snakemake.output.link,
)
