rule train_classifier:
    input:
        manifest=MANIFEST,
        saliency=SALIENCY_MAPS,
        weights=weights_input("classifier"),
    output:
        model=f"{RUN}/{{experiment}}/classifier/model.pt",
        sidecar=f"{RUN}/{{experiment}}/classifier/model.json",
        losses=f"{RUN}/{{experiment}}/classifier/losses.tsv",
    log:
        log_file("train_classifier/{experiment}"),
    benchmark:
        benchmark_file("train_classifier/{experiment}")
    conda:
        CONDA_ENV
    threads: threads_of("train_classifier")
    resources:
        **resources_of("train_classifier"),
    params:
        # Per-epoch checkpoints live outside the declared outputs, so that Snakemake does not
        # delete them before a rerun: an interrupted training resumes from the last one.
        checkpoints=f"{RUN}/{{experiment}}/classifier/checkpoints",
        training=training_settings("classifier"),
        weights=weights_param("classifier"),
        loss_weights=loss_weights,
        seed=seed_param,
        precision=config["precision"],
        code=code("train_classifier"),
    script:
        "../workflow_scripts/train_classifier.py"
