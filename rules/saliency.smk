SALIENCY = config["saliency"]


rule saliency:
    input:
        manifest=MANIFEST,
        fetched=rules.fetch_saliency.output.maps if SALIENCY["source"] == "url" else [],
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
        # Fetched maps are read like a folder of maps.
        source="folder" if SALIENCY["source"] == "url" else SALIENCY["source"],
        folder=lambda wildcards, input: input.fetched or SALIENCY["folder"],
        simulated=SALIENCY["simulated"],
        seed=config["seed"],
        code=code("saliency_maps"),
    script:
        "../workflow_scripts/saliency_maps.py"
