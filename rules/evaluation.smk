rule evaluate_labels:
    input:
        manifest=MANIFEST,
        labels=label_dir,
        label_split=LABEL_SPLIT,
    output:
        f"{RUN}/{{experiment}}/metrics/labels_{{labels}}.json",
    log:
        f"{RUN}/logs/evaluate_labels/{{experiment}}/{{labels}}.log",
    benchmark:
        f"{RUN}/benchmarks/evaluate_labels/{{experiment}}/{{labels}}.tsv"
    # Seconds to a minute of single-threaded reading: run where Snakemake runs, not as a
    # cluster job that would wait in the queue longer than it works.
    localrule: True
    conda:
        "../envs/i2crc.yaml"
    threads: threads_of("evaluate")
    resources:
        **resources_of("evaluate"),
    params:
        split="train",
        code=code("evaluate_labels"),
    script:
        "../workflow_scripts/evaluate_labels.py"


rule evaluate_segmentation:
    input:
        manifest=MANIFEST,
        labels=f"{RUN}/{{experiment}}/segmentation/{{labels}}/pred_val",
    output:
        f"{RUN}/{{experiment}}/metrics/segmentation_{{labels}}.json",
    log:
        f"{RUN}/logs/evaluate_segmentation/{{experiment}}/{{labels}}.log",
    benchmark:
        f"{RUN}/benchmarks/evaluate_segmentation/{{experiment}}/{{labels}}.tsv"
    # Seconds to a minute of single-threaded reading: run where Snakemake runs, not as a
    # cluster job that would wait in the queue longer than it works.
    localrule: True
    conda:
        "../envs/i2crc.yaml"
    threads: threads_of("evaluate")
    resources:
        **resources_of("evaluate"),
    params:
        split="val",
        code=code("evaluate_labels"),
    script:
        "../workflow_scripts/evaluate_labels.py"


rule evaluate_cams:
    input:
        manifest=MANIFEST,
        cams=f"{RUN}/{{experiment}}/cams/cams.h5",
        label_split=LABEL_SPLIT,
    output:
        f"{RUN}/{{experiment}}/metrics/cams.json",
    log:
        f"{RUN}/logs/evaluate_cams/{{experiment}}.log",
    benchmark:
        f"{RUN}/benchmarks/evaluate_cams/{{experiment}}.tsv"
    # Seconds to a minute of single-threaded reading: run where Snakemake runs, not as a
    # cluster job that would wait in the queue longer than it works.
    localrule: True
    conda:
        "../envs/i2crc.yaml"
    threads: threads_of("evaluate")
    resources:
        **resources_of("evaluate"),
    params:
        thresholds=config["evaluation"]["cam_thresholds"],
        fixed_threshold=config["evaluation"]["cam_threshold"],
        code=code("evaluate_cams"),
    script:
        "../workflow_scripts/evaluate_cams.py"


rule evaluate_classifier:
    input:
        manifest=MANIFEST,
        model=f"{RUN}/{{experiment}}/classifier/model.pt",
    output:
        f"{RUN}/{{experiment}}/metrics/classification.json",
    log:
        f"{RUN}/logs/evaluate_classifier/{{experiment}}.log",
    benchmark:
        f"{RUN}/benchmarks/evaluate_classifier/{{experiment}}.tsv"
    conda:
        "../envs/i2crc.yaml"
    threads: threads_of("predict")
    resources:
        **resources_of("predict"),
    params:
        split="val",
        precision=config["precision"],
        code=code("evaluate_classifier"),
    script:
        "../workflow_scripts/evaluate_classifier.py"
