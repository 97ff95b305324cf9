rule refine_labels:
    input:
        manifest=MANIFEST,
        predictions=f"{RUN}/{{experiment}}/segmentation/pseudo/pred_train",
        initial=LABEL_SOURCES["pseudo"],
    output:
        directory(LABEL_SOURCES["refined"]),
    log:
        log_file("refine_labels/{experiment}"),
    benchmark:
        benchmark_file("refine_labels/{experiment}")
    conda:
        CONDA_ENV
    threads: threads_of("labels")
    resources:
        **resources_of("labels"),
    params:
        refinement=config["refinement"],
        code=code("refine_labels"),
    script:
        "../workflow_scripts/refine_labels.py"
