from i2crc_core.runner import run_stage
from i2crc_core.stages import train_classifier

run_stage(
    snakemake.log[0],
    train_classifier.run,
    manifest_path=snakemake.input.manifest,
    saliency_dir=snakemake.input.saliency,
    model_path=snakemake.output.model,
    curve_path=snakemake.output.losses,
    checkpoint_dir=snakemake.params.checkpoints,
    training=snakemake.params.training,
    weights=snakemake.params.weights,
    loss_weights=snakemake.params.loss_weights,
    seed=snakemake.params.seed,
    device=snakemake.config["device"],  # operational, not a param: reruns nothing
    precision=snakemake.params.precision,
    threads=snakemake.threads,
)
