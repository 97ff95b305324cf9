rule pseudo_labels:
    input:
        manifest=MANIFEST,
        cams=f"{RUN}/{{experiment}}/cams/cams.h5",
        saliency=SALIENCY_MAPS,
    output:
        directory(LABEL_SOURCES["pseudo"]),
    log:
        log_file("pseudo_labels/{experiment}"),
    benchmark:
        benchmark_file("pseudo_labels/{experiment}")
    conda:
        CONDA_ENV
    threads: threads_of("labels")
    resources:
        **resources_of("labels"),
    params:
        thresholds=config["pseudo_labels"],
        code=code("pseudo_labels"),
    script:
        "../workflow_scripts/pseudo_labels.py"
