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
