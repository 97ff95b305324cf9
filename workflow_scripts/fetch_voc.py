from i2crc_core.runner import run_stage
from i2crc_core.stages import fetch_voc

run_stage(
    snakemake.log[0],
    fetch_voc.run,
    root=snakemake.output.root,
    voc=snakemake.params.voc,
    sbd=snakemake.params.sbd,
    download_dir=snakemake.params.download_dir,
    train_aug_count=snakemake.params.train_aug_count,
)
