MAIN_METRICS = metric_files(
    config["run_experiments"],
    [
        "cams",
        "labels_pseudo",
        "labels_refined",
        "segmentation_pseudo",
        "segmentation_refined",
    ],
)
ABLATION_METRICS = {
    **MAIN_METRICS,
    **metric_files(config["run_experiments"], ["segmentation_predicted"]),
    **metric_files(
        config["ablation_experiments"],
        ["cams", "labels_pseudo", "segmentation_pseudo"],
    ),
}



def model_sidecars(experiments, models):
    """The sidecars of the models behind a summary's numbers, which record what trained them
    (provenance); `models` are folders under an experiment, e.g. "segmentation/pseudo"."""
    return {
        f"sidecar__{experiment}__{model.replace('/', '_')}": f"{OUT}/{experiment}/{model}/model.json"
        for experiment in experiments
        for model in models
    }


MAIN_SIDECARS = model_sidecars(
    config["run_experiments"],
    ["classifier", "segmentation/pseudo", "segmentation/refined"],
)
ABLATION_SIDECARS = {
    **MAIN_SIDECARS,
    **model_sidecars(config["run_experiments"], ["segmentation/predicted"]),
    **model_sidecars(
        config["ablation_experiments"], ["classifier", "segmentation/pseudo"]
    ),
}


rule summary:
    input:
        unpack(lambda wildcards: {**MAIN_METRICS, **MAIN_SIDECARS}),
        saliency=f"{OUT}/saliency/quality.json",
        manifest=MANIFEST,
    output:
        json=f"{OUT}/summary.json",
        markdown=f"{OUT}/summary.md",
        table=report(
            f"{OUT}/summary.tsv",
            caption="report/summary.rst",
            category="Results",
        ),
        per_class=report(
            f"{OUT}/per_class_iou.tsv",
            caption="report/per_class.rst",
            category="Results",
        ),
        provenance=report(
            f"{OUT}/provenance.tsv",
            caption="report/provenance.rst",
            category="Results",
        ),
    log:
        f"{OUT}/logs/summary.log",
    benchmark:
        f"{OUT}/benchmarks/summary.tsv"
    # Seconds of work: run where Snakemake runs, never as a cluster job.
    localrule: True
    conda:
        "../envs/i2crc.yaml"
    threads: threads_of("evaluate")
    resources:
        **resources_of("evaluate"),
    params:
        experiments=config["run_experiments"],
        code=code("summary"),
    script:
        "../workflow_scripts/summary.py"


rule summary_ablation:
    input:
        unpack(lambda wildcards: {**ABLATION_METRICS, **ABLATION_SIDECARS}),
        saliency=f"{OUT}/saliency/quality.json",
        manifest=MANIFEST,
    output:
        json=f"{OUT}/summary_ablation.json",
        markdown=f"{OUT}/summary_ablation.md",
        table=report(
            f"{OUT}/summary_ablation.tsv",
            caption="report/summary.rst",
            category="Ablation",
        ),
        per_class=f"{OUT}/per_class_iou_ablation.tsv",
        provenance=f"{OUT}/provenance_ablation.tsv",
    log:
        f"{OUT}/logs/summary_ablation.log",
    benchmark:
        f"{OUT}/benchmarks/summary_ablation.tsv"
    # Seconds of work: run where Snakemake runs, never as a cluster job.
    localrule: True
    conda:
        "../envs/i2crc.yaml"
    threads: threads_of("evaluate")
    resources:
        **resources_of("evaluate"),
    params:
        experiments=config["run_experiments"] + config["ablation_experiments"],
        code=code("summary"),
    script:
        "../workflow_scripts/summary.py"


rule figure_cams:
    input:
        manifest=MANIFEST,
        cams=expand(
            f"{OUT}/{{experiment}}/cams/cams.h5", experiment=config["run_experiments"]
        ),
    output:
        report(
            f"{OUT}/figures/cams.png",
            caption="report/cams.rst",
            category="Figures",
        ),
    log:
        f"{OUT}/logs/figure_cams.log",
    benchmark:
        f"{OUT}/benchmarks/figure_cams.tsv"
    # Seconds of work: run where Snakemake runs, never as a cluster job.
    localrule: True
    conda:
        "../envs/i2crc.yaml"
    threads: threads_of("evaluate")
    resources:
        **resources_of("evaluate"),
    params:
        experiments=config["run_experiments"],
        num_images=config["evaluation"]["figure_images"],
        code=code("figure_cams"),
    script:
        "../workflow_scripts/figure_cams.py"


# The figures that the default target adds to cams.png.
REPORT_FIGURES = [
    f"{OUT}/figures/training.png",
    *expand(
        f"{OUT}/figures/examples_{{experiment}}.png",
        experiment=config["run_experiments"],
    ),
]


rule figure_training:
    input:
        classifier=expand(
            f"{OUT}/{{experiment}}/classifier/losses.tsv",
            experiment=config["run_experiments"],
        ),
        pseudo=expand(
            f"{OUT}/{{experiment}}/segmentation/pseudo/losses.tsv",
            experiment=config["run_experiments"],
        ),
        refined=expand(
            f"{OUT}/{{experiment}}/segmentation/refined/losses.tsv",
            experiment=config["run_experiments"],
        ),
    output:
        report(
            f"{OUT}/figures/training.png",
            caption="report/training.rst",
            category="Figures",
        ),
    log:
        f"{OUT}/logs/figure_training.log",
    benchmark:
        f"{OUT}/benchmarks/figure_training.tsv"
    # Seconds of work: run where Snakemake runs, never as a cluster job.
    localrule: True
    conda:
        "../envs/i2crc.yaml"
    threads: threads_of("evaluate")
    resources:
        **resources_of("evaluate"),
    params:
        experiments=config["run_experiments"],
        code=code("figure_training"),
    script:
        "../workflow_scripts/figure_training.py"


rule figure_examples:
    input:
        manifest=MANIFEST,
        saliency=SALIENCY_MAPS,
        cams=f"{OUT}/{{experiment}}/cams/cams.h5",
        pseudo=LABEL_SOURCES["pseudo"],
        refined=LABEL_SOURCES["refined"],
        model=f"{OUT}/{{experiment}}/segmentation/refined/model.pt",
    output:
        report(
            f"{OUT}/figures/examples_{{experiment}}.png",
            caption="report/examples.rst",
            category="Figures",
            labels={"figure": "examples", "experiment": "{experiment}"},
        ),
    log:
        f"{OUT}/logs/figure_examples/{{experiment}}.log",
    benchmark:
        f"{OUT}/benchmarks/figure_examples/{{experiment}}.tsv"
    # Seconds of work (a few images through the segmenter on the CPU): run where Snakemake
    # runs, never as a cluster job.
    localrule: True
    conda:
        "../envs/i2crc.yaml"
    threads: threads_of("evaluate")
    resources:
        **resources_of("evaluate"),
    params:
        num_images=config["evaluation"]["figure_images"],
        scales=config["segmentation"]["inference_scales"],
        code=code("figure_examples"),
    script:
        "../workflow_scripts/figure_examples.py"
