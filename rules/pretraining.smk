# The synthetic benchmark's stand-in for ImageNet weights (docs/method.md §9): a `small`
# classifier trained on the image-level labels alone, once per seed; `weights: pretrained`
# starts the classifier's and the segmenter's backbones from its backbone.
rule pretrain:
    input:
        manifest=MANIFEST,
    output:
        model=f"{RUN}/pretraining/model.pt",
        sidecar=f"{RUN}/pretraining/model.json",
        losses=f"{RUN}/pretraining/losses.tsv",
        backbone=PRETRAINED_BACKBONE,
    log:
        log_file("pretrain"),
    benchmark:
        benchmark_file("pretrain")
    conda:
        CONDA_ENV
    threads: threads_of("pretrain")
    resources:
        **resources_of("pretrain"),
    params:
        checkpoints=f"{RUN}/pretraining/checkpoints",
        training=training_settings("pretraining"),
        seed=seed_param,
        precision=config["precision"],
        code=code("pretrain"),
    script:
        "../workflow_scripts/pretrain.py"
