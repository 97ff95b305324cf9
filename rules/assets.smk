rule fetch_saliency:
    output:
        maps=directory(f"{OUT}/saliency/fetched"),
    log:
        log_file("fetch_saliency", OUT),
    benchmark:
        benchmark_file("fetch_saliency", OUT)
    localrule: True
    conda:
        CONDA_ENV
    threads: threads_of("saliency")
    resources:
        **resources_of("saliency"),
    params:
        url=config["saliency"]["url"],
        sha256=config["saliency"]["sha256"],
        archive=config["saliency"]["archive"],
        member_prefix=config["saliency"]["member_prefix"],
        # Downloads are kept beside the results: a rerun reuses (or resumes) them.
        cache_dir=f"{OUT}/downloads",
        code=code("fetch_saliency"),
    script:
        "../workflow_scripts/fetch_saliency.py"


rule imagenet_weights:
    output:
        link=f"{OUT}/weights/{{backbone}}_imagenet.pth",
    log:
        log_file("imagenet_weights/{backbone}", OUT),
    benchmark:
        benchmark_file("imagenet_weights/{backbone}", OUT)
    localrule: True
    conda:
        CONDA_ENV
    threads: threads_of("dataset")
    resources:
        **resources_of("dataset"),
    params:
        code=code("imagenet_weights"),
    script:
        "../workflow_scripts/imagenet_weights.py"


# dataset.fetch: VOC 2012 + SBD downloaded and built into dataset.root, which prepare_dataset
# then reads (rules/dataset.smk).
if DATASET["fetch"]:
    if DATASET["kind"] != "voc":
        sys.exit(
            "i2crc error: config key 'dataset.fetch': builds VOC 2012 + SBD, which needs "
            f"dataset.kind 'voc' (got '{DATASET['kind']}')"
        )

    rule fetch_voc:
        output:
            root=directory(DATASET["root"]),
        log:
            log_file("fetch_voc", OUT),
        benchmark:
            benchmark_file("fetch_voc", OUT)
        localrule: True
        conda:
            CONDA_ENV
        threads: threads_of("dataset")
        resources:
            **resources_of("dataset"),
        params:
            voc=DATASET["archives"]["voc"],
            sbd=DATASET["archives"]["sbd"],
            download_dir=DATASET["download_dir"],
            train_aug_count=DATASET["train_aug_count"],
            code=code("fetch_voc"),
        script:
            "../workflow_scripts/fetch_voc.py"
