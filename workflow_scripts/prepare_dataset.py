from i2crc_core.runner import run_stage
from i2crc_core.stages import prepare_dataset

run_stage(
    snakemake.log[0],
    prepare_dataset.run,
    root=snakemake.params.root,
    layout=snakemake.params.layout,
    splits=snakemake.params.splits,
    num_classes=snakemake.params.num_classes,
    image_labels=snakemake.params.image_labels,
    manifest_path=snakemake.output.manifest,
    label_lists={"train": snakemake.output.train_labels, "val": snakemake.output.val_labels},
)
