rule pseudo_labels:
    input:
        manifest=MANIFEST,
        cams=f"{RUN}/{{experiment}}/cams/cams.h5",
        saliency=SALIENCY_MAPS,
    output:
        directory(LABEL_SOURCES["pseudo"]),
    log:
        f"{RUN}/logs/pseudo_labels/{{experiment}}.log",
    benchmark:
        f"{RUN}/benchmarks/pseudo_labels/{{experiment}}.tsv"
    conda:
        "../envs/i2crc.yaml"
    threads: threads_of("labels")
    resources:
        **resources_of("labels"),
    params:
        thresholds=config["pseudo_labels"],
        code=code("pseudo_labels"),
    script:
        "../workflow_scripts/pseudo_labels.py"
