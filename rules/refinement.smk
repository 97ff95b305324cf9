rule refine_labels:
    input:
        manifest=MANIFEST,
        predictions=f"{OUT}/{{experiment}}/segmentation/pseudo/pred_train",
        initial=LABEL_SOURCES["pseudo"],
    output:
        directory(LABEL_SOURCES["refined"]),
    log:
        f"{OUT}/logs/refine_labels/{{experiment}}.log",
    benchmark:
        f"{OUT}/benchmarks/refine_labels/{{experiment}}.tsv"
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
