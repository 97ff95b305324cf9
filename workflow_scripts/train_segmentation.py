from i2crc_core.runner import run_stage
from i2crc_core.stages import train_segmentation

run_stage(
    snakemake.log[0],
    train_segmentation.run,
    manifest_path=snakemake.input.manifest,
    label_dir=snakemake.params.label_dir,
    model_path=snakemake.output.model,
    curve_path=snakemake.output.losses,
    checkpoint_dir=snakemake.params.checkpoints,
    checkpoint_every=snakemake.config["segmentation"][
        "checkpoint_every"
    ],  # operational, not a param: reruns nothing
    training=snakemake.params.training,
    weights=snakemake.params.weights,
    seed=snakemake.params.seed,
    device=snakemake.config["device"],  # operational, not a param: reruns nothing
    precision=snakemake.params.precision,
    threads=snakemake.threads,
)
