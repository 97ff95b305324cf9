rule refine_labels:
    input:
        manifest=MANIFEST,
        predictions=f"{RUN}/{{experiment}}/segmentation/pseudo/pred_train",
        initial=LABEL_SOURCES["pseudo"],
    output:
        directory(LABEL_SOURCES["refined"]),
    log:
        f"{RUN}/logs/refine_labels/{{experiment}}.log",
    benchmark:
        f"{RUN}/benchmarks/refine_labels/{{experiment}}.tsv"
    conda:
        "../envs/i2crc.yaml"
    threads: threads_of("labels")
    resources:
        **resources_of("labels"),
    params:
        refinement=config["refinement"],
        code=code("refine_labels"),
    script:
        "../workflow_scripts/refine_labels.py"
