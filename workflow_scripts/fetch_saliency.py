from i2crc_core.runner import run_stage
from i2crc_core.stages import assets

run_stage(
    snakemake.log[0],
    assets.saliency_archive,
    url=snakemake.params.url,
    sha256=snakemake.params.sha256,
    archive=snakemake.params.archive,
    member_prefix=snakemake.params.member_prefix,
    out_dir=snakemake.output.maps,
    cache_dir=snakemake.params.cache_dir,
)
