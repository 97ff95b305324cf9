rule train_segmentation:
    input:
        manifest=MANIFEST,
        labels=label_input,
        weights=weights_input("segmentation"),
    output:
        model=f"{RUN}/{{experiment}}/segmentation/{{labels}}/model.pt",
        sidecar=f"{RUN}/{{experiment}}/segmentation/{{labels}}/model.json",
        losses=f"{RUN}/{{experiment}}/segmentation/{{labels}}/losses.tsv",
    log:
        log_file("train_segmentation/{experiment}/{labels}"),
    benchmark:
        benchmark_file("train_segmentation/{experiment}/{labels}")
    conda:
        CONDA_ENV
    threads: threads_of("train_segmentation")
    resources:
        **resources_of("train_segmentation"),
    params:
        checkpoints=f"{RUN}/{{experiment}}/segmentation/{{labels}}/checkpoints",
        label_dir=label_dir,
        training=training_settings(
            "segmentation",
            operational=[
                "checkpoint_every",
                "inference_scales",
                "inference_fusion",
                "crf",
            ],
        ),
        weights=weights_param("segmentation"),
        seed=seed_param,
        precision=config["precision"],
        code=code("train_segmentation"),
    script:
        "../workflow_scripts/train_segmentation.py"


rule predict:
    input:
        manifest=MANIFEST,
        model=f"{RUN}/{{experiment}}/segmentation/{{labels}}/model.pt",
    output:
        directory(f"{RUN}/{{experiment}}/segmentation/{{labels}}/pred_{{split}}"),
    log:
        log_file("predict/{experiment}/{labels}_{split}"),
    benchmark:
        benchmark_file("predict/{experiment}/{labels}_{split}")
    conda:
        CONDA_ENV
    threads: threads_of("predict")
    resources:
        **resources_of("predict"),
    params:
        scales=config["segmentation"]["inference_scales"],
        fusion=config["segmentation"]["inference_fusion"],
        crf=CRF,
        precision=config["precision"],
        code=code("predict"),
    script:
        "../workflow_scripts/predict.py"
