DATASET = config["dataset"]
# A real dataset's layout and split lists (the synthetic benchmark's are VOC's, see below).
USER_LAYOUT = {key: DATASET[key] for key in ("image_dir", "mask_dir", "split_dir")}
USER_SPLITS = {"train": DATASET["train_split"], "val": DATASET["eval_split"]}


rule generate_synthetic:
    output:
        directory(SYNTHETIC_ROOT),
    log:
        log_file("generate_synthetic", DATA),
    benchmark:
        benchmark_file("generate_synthetic", DATA)
    conda:
        CONDA_ENV
    threads: threads_of("dataset")
    resources:
        **resources_of("dataset"),
    params:
        synthetic=DATASET["synthetic"],
        num_classes=DATASET["num_classes"],
        seed=seed_param,
        code=code("generate_synthetic"),
    script:
        "../workflow_scripts/generate_synthetic.py"


rule prepare_dataset:
    input:
        # A user-supplied root is checked by the stage itself, so that a missing root gets
        # the library's message rather than a missing-input listing. With dataset.fetch the
        # root is the folder the fetch_voc rule builds (rules/assets.smk).
        root=(
            SYNTHETIC_ROOT
            if SYNTHETIC
            else DATASET["root"] if DATASET["fetch"] else []
        ),
    output:
        manifest=MANIFEST,
        train_labels=f"{DATA}/dataset/image_labels_train.txt",
        val_labels=f"{DATA}/dataset/image_labels_val.txt",
    log:
        log_file("prepare_dataset", DATA),
    benchmark:
        benchmark_file("prepare_dataset", DATA)
    conda:
        CONDA_ENV
    threads: threads_of("dataset")
    resources:
        **resources_of("dataset"),
    params:
        root=lambda wildcards, input: input.root or DATASET["root"],
        # The synthetic benchmark is written in VOC's own layout, its splits named after
        # their roles and its image labels read from its masks: the layout keys are not its.
        layout=VOC_DIRS if SYNTHETIC else USER_LAYOUT,
        splits=dict(zip(ROLES, ROLES)) if SYNTHETIC else USER_SPLITS,
        num_classes=DATASET["num_classes"],
        image_labels="masks" if SYNTHETIC else DATASET["image_labels"],
        # Edits inside a user's root rerun from here (i2crc_core/data/data_fingerprint.py); a root
        # the pipeline builds is tracked as that rule's output.
        files=(
            None
            if SYNTHETIC or DATASET["fetch"]
            else dataset_fingerprint(
                DATASET["root"],
                splits=USER_SPLITS,
                image_labels=DATASET["image_labels"],
                **USER_LAYOUT,
            )
        ),
        code=code("prepare_dataset"),
    script:
        "../workflow_scripts/prepare_dataset.py"


# The training images that label metrics score (evaluation.label_split), beside the manifest
# but a file of its own: changing the key reruns the evaluations, not what reads the manifest.
LABEL_SPLIT = str(Path(MANIFEST).with_name("label_split.json"))


rule label_split:
    input:
        manifest=MANIFEST,
    output:
        LABEL_SPLIT,
    log:
        log_file("label_split", DATA),
    benchmark:
        benchmark_file("label_split", DATA)
    localrule: True
    conda:
        CONDA_ENV
    threads: threads_of("evaluate")
    resources:
        **resources_of("evaluate"),
    params:
        split=config["evaluation"]["label_split"],
        code=code("label_split"),
    script:
        "../workflow_scripts/label_split.py"
