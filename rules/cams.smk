scattergather:
    cams=config["cams"]["shards"],


rule extract_cams:
    input:
        manifest=MANIFEST,
        model=f"{RUN}/{{experiment}}/classifier/model.pt",
    output:
        CAM_SHARD,
    log:
        f"{RUN}/logs/extract_cams/{{experiment}}/{{scatteritem}}.log",
    benchmark:
        f"{RUN}/benchmarks/extract_cams/{{experiment}}/{{scatteritem}}.tsv"
    conda:
        "../envs/i2crc.yaml"
    threads: threads_of("extract_cams")
    resources:
        **resources_of("extract_cams"),
    params:
        scales=config["cams"]["scales"],
        flip=config["cams"]["flip"],
        precision=config["precision"],
        code=code("extract_cams"),
    script:
        "../workflow_scripts/extract_cams.py"


rule gather_cams:
    input:
        gather.cams(CAM_SHARD, experiment="{experiment}", seed="{seed}"),
    output:
        f"{RUN}/{{experiment}}/cams/cams.h5",
    log:
        f"{RUN}/logs/gather_cams/{{experiment}}.log",
    benchmark:
        f"{RUN}/benchmarks/gather_cams/{{experiment}}.tsv"
    # Seconds of work: run where Snakemake runs, never as a cluster job.
    localrule: True
    conda:
        "../envs/i2crc.yaml"
    threads: threads_of("labels")
    resources:
        **resources_of("labels"),
    params:
        code=code("gather_cams"),
    script:
        "../workflow_scripts/gather_cams.py"
