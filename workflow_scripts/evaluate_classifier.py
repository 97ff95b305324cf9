from i2crc_core.runner import run_stage
from i2crc_core.stages import evaluate_classifier

run_stage(
    snakemake.log[0],
    evaluate_classifier.run,
    manifest_path=snakemake.input.manifest,
    model_path=snakemake.input.model,
    split=snakemake.params.split,
    out_path=snakemake.output[0],
    device=snakemake.config["device"],  # operational, not a param: reruns nothing
    precision=snakemake.params.precision,
    threads=snakemake.threads,
)
