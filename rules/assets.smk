# Downloads run where Snakemake runs (the login node on a cluster): compute nodes often have
# no internet.
localrules:
    fetch_saliency,
    imagenet_weights,


rule fetch_saliency:
    output:
        maps=directory(f"{OUT}/saliency/fetched"),
    log:
        f"{OUT}/logs/fetch_saliency.log",
    benchmark:
        f"{OUT}/benchmarks/fetch_saliency.tsv"
    conda:
        "../envs/i2crc.yaml"
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
        f"{OUT}/logs/imagenet_weights/{{backbone}}.log",
    benchmark:
        f"{OUT}/benchmarks/imagenet_weights/{{backbone}}.tsv"
    conda:
        "../envs/i2crc.yaml"
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

    localrules:
        fetch_voc,

    rule fetch_voc:
        output:
            root=directory(DATASET["root"]),
        log:
            f"{OUT}/logs/fetch_voc.log",
        benchmark:
            f"{OUT}/benchmarks/fetch_voc.tsv"
        conda:
            "../envs/i2crc.yaml"
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
