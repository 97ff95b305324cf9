rule evaluate_labels:
    input:
        manifest=MANIFEST,
        labels=label_dir,
        label_split=LABEL_SPLIT,
    output:
        f"{RUN}/{{experiment}}/metrics/labels_{{labels}}.json",
    log:
        log_file("evaluate_labels/{experiment}/{labels}"),
    benchmark:
        benchmark_file("evaluate_labels/{experiment}/{labels}")
    localrule: True
    conda:
        CONDA_ENV
    threads: threads_of("evaluate")
    resources:
        **resources_of("evaluate"),
    params:
        split="train",
        code=code("evaluate_labels"),
    script:
        "../workflow_scripts/evaluate_labels.py"


# Validation predictions, scored by the same script as the training labels.
use rule evaluate_labels as evaluate_segmentation with:
    input:
        manifest=MANIFEST,
        labels=f"{RUN}/{{experiment}}/segmentation/{{labels}}/pred_val",
    output:
        f"{RUN}/{{experiment}}/metrics/segmentation_{{labels}}.json",
    log:
        log_file("evaluate_segmentation/{experiment}/{labels}"),
    benchmark:
        benchmark_file("evaluate_segmentation/{experiment}/{labels}")
    # `use rule ... with:` does not carry `localrule` over (Snakemake 9.27): it is given again.
    localrule: True
    params:
        split="val",
        code=code("evaluate_labels"),


rule evaluate_cams:
    input:
        manifest=MANIFEST,
        cams=f"{RUN}/{{experiment}}/cams/cams.h5",
        label_split=LABEL_SPLIT,
    output:
        f"{RUN}/{{experiment}}/metrics/cams.json",
    log:
        log_file("evaluate_cams/{experiment}"),
    benchmark:
        benchmark_file("evaluate_cams/{experiment}")
    localrule: True
    conda:
        CONDA_ENV
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
        log_file("evaluate_classifier/{experiment}"),
    benchmark:
        benchmark_file("evaluate_classifier/{experiment}")
    conda:
        CONDA_ENV
    threads: threads_of("predict")
    resources:
        **resources_of("predict"),
    params:
        split="val",
        precision=config["precision"],
        code=code("evaluate_classifier"),
    script:
        "../workflow_scripts/evaluate_classifier.py"
