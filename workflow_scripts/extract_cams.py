from i2crc_core.runner import run_stage
from i2crc_core.stages import extract_cams

run_stage(
    snakemake.log[0],
    extract_cams.run,
    manifest_path=snakemake.input.manifest,
    model_path=snakemake.input.model,
    out_path=snakemake.output[0],
    shard=snakemake.wildcards.scatteritem,
    input_size=snakemake.params.input_size,
    scales=snakemake.params.scales,
    flip=snakemake.params.flip,
    normalise=snakemake.params.normalise,
    device=snakemake.config["device"],  # operational, not a param: reruns nothing
    precision=snakemake.params.precision,
    threads=snakemake.threads,
)
