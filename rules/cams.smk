scattergather:
    cams=config["cams"]["shards"],


rule extract_cams:
    input:
        manifest=MANIFEST,
        model=f"{RUN}/{{experiment}}/classifier/model.pt",
    output:
        CAM_SHARD,
    log:
        log_file("extract_cams/{experiment}/{scatteritem}"),
    benchmark:
        benchmark_file("extract_cams/{experiment}/{scatteritem}")
    conda:
        CONDA_ENV
    threads: threads_of("extract_cams")
    resources:
        **resources_of("extract_cams"),
    params:
        input_size=config["cams"]["input_size"],
        scales=config["cams"]["scales"],
        flip=config["cams"]["flip"],
        normalise=config["cams"]["normalise"],
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
        log_file("gather_cams/{experiment}"),
    benchmark:
        benchmark_file("gather_cams/{experiment}")
    localrule: True
    conda:
        CONDA_ENV
    threads: threads_of("labels")
    resources:
        **resources_of("labels"),
    params:
        code=code("gather_cams"),
    script:
        "../workflow_scripts/gather_cams.py"
