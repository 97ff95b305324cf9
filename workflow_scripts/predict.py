from i2crc_core.runner import run_stage
from i2crc_core.stages import predict

run_stage(
    snakemake.log[0],
    predict.run,
    manifest_path=snakemake.input.manifest,
    model_path=snakemake.input.model,
    split=snakemake.wildcards.split,
    out_dir=snakemake.output[0],
    scales=snakemake.params.scales,
    fusion=snakemake.params.fusion,
    crf=snakemake.params.crf,
    device=snakemake.config["device"],  # operational, not a param: reruns nothing
    precision=snakemake.params.precision,
    threads=snakemake.threads,
)
