from i2crc_core.runner import run_stage
from i2crc_core.stages import evaluate

run_stage(
    snakemake.log[0],
    evaluate.labels,
    manifest_path=snakemake.input.manifest,
    label_dir=snakemake.input.labels,
    split=snakemake.params.split,
    # Training labels are scored on evaluation.label_split's images; val labels on all of val.
    label_split_path=snakemake.input.get("label_split"),
    out_path=snakemake.output[0],
)
