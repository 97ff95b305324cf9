rule saliency:
    input:
        manifest=MANIFEST,
    output:
        maps=directory(SALIENCY_MAPS),
        quality=f"{OUT}/saliency/quality.json",
    log:
        f"{OUT}/logs/saliency.log",
    benchmark:
        f"{OUT}/benchmarks/saliency.tsv"
    conda:
        "../envs/i2crc.yaml"
    threads: threads_of("saliency")
    resources:
        **resources_of("saliency"),
    params:
        source=config["saliency"]["source"],
        folder=config["saliency"]["folder"],
        simulated=config["saliency"]["simulated"],
        seed=config["seed"],
        code=code("saliency_maps"),
    script:
        "../workflow_scripts/saliency_maps.py"
