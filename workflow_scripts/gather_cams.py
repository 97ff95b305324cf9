from i2crc_core.runner import run_stage
from i2crc_core.stages import gather_cams

run_stage(
    snakemake.log[0],
    gather_cams.run,
    shard_paths=list(snakemake.input),
    out_path=snakemake.output[0],
    mode=snakemake.config["cams"]["merge"],  # operational, not a param: reruns nothing
)
