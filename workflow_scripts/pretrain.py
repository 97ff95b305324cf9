from i2crc_core.runner import run_stage
from i2crc_core.stages import pretrain

run_stage(
    snakemake.log[0],
    pretrain.run,
    manifest_path=snakemake.input.manifest,
    model_path=snakemake.output.model,
    backbone_path=snakemake.output.backbone,
    curve_path=snakemake.output.losses,
    checkpoint_dir=snakemake.params.checkpoints,
    training=snakemake.params.training,
    seed=snakemake.params.seed,
    device=snakemake.config["device"],  # operational, not a param: reruns nothing
    precision=snakemake.params.precision,
    threads=snakemake.threads,
)
