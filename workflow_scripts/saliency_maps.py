from i2crc_core.runner import run_stage
from i2crc_core.stages import saliency_maps

run_stage(
    snakemake.log[0],
    saliency_maps.run,
    manifest_path=snakemake.input.manifest,
    out_dir=snakemake.output.maps,
    quality_path=snakemake.output.quality,
    source=snakemake.params.source,
    folder=snakemake.params.folder,
    simulated=snakemake.params.simulated,
    seed=snakemake.params.seed,
)
