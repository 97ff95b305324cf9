MAIN_METRICS = [
    (
        config["run_experiments"],
        [
            "classification",
            "cams",
            "labels_pseudo",
            "labels_refined",
            "segmentation_pseudo",
            "segmentation_refined",
        ],
    )
]
# Paper Table IV: every row with its CAMs, labels, round 1 and both retrainings (on the refined
# labels, and on the round-1 predictions as they are).
ABLATION_METRICS = [
    (
        config["run_experiments"] + config["ablation_experiments"],
        [*MAIN_METRICS[0][1], "segmentation_predicted"],
    )
]


# The models behind a summary's numbers, whose sidecars record what trained them (provenance):
# folders under an experiment.
MAIN_SIDECARS = [
    (
        config["run_experiments"],
        ["classifier", "segmentation/pseudo", "segmentation/refined"],
    ),
]
ABLATION_SIDECARS = [
    (
        config["run_experiments"] + config["ablation_experiments"],
        [*MAIN_SIDECARS[0][1], "segmentation/predicted"],
    )
]


# Paper Table VIII: CAMs, pseudo labels and round-1 segmentation for each λ of the sweep.
SWEEP_METRICS = [
    (
        SWEEP_EXPERIMENTS,
        ["classification", "cams", "labels_pseudo", "segmentation_pseudo"],
    )
]
SWEEP_SIDECARS = [(SWEEP_EXPERIMENTS, ["classifier", "segmentation/pseudo"])]
# The fully supervised ceiling, a row of every summary: the segmenter trained on the truth.
FULL_METRICS = ([FULL_SUPERVISION], ["segmentation_truth"])
FULL_SIDECARS = ([FULL_SUPERVISION], ["segmentation/truth"])
# Each table, per seed: (experiments, metrics, models behind them, report category).
SUMMARIES = {
    "summary": (
        [*config["run_experiments"], FULL_SUPERVISION],
        [*MAIN_METRICS, FULL_METRICS],
        [*MAIN_SIDECARS, FULL_SIDECARS],
        "Results",
    ),
    "summary_ablation": (
        [*config["run_experiments"], *config["ablation_experiments"], FULL_SUPERVISION],
        [*ABLATION_METRICS, FULL_METRICS],
        [*ABLATION_SIDECARS, FULL_SIDECARS],
        "Ablation (Table IV)",
    ),
    "summary_sweep": (
        [*SWEEP_EXPERIMENTS, FULL_SUPERVISION],
        [*SWEEP_METRICS, FULL_METRICS],
        [*SWEEP_SIDECARS, FULL_SIDECARS],
        "Lambda sweep (Table VIII)",
    ),
}


for target, (experiments, metrics, sidecars, category) in SUMMARIES.items():
    # per_class_iou.tsv, per_class_iou_ablation.tsv, ...
    suffix = target.removeprefix("summary")

    rule:
        name:
            target
        input:
            unpack(summary_inputs(metrics, sidecars)),
            saliency=f"{SALIENCY_ROOT}/saliency/quality.json",
            manifest=MANIFEST,
        output:
            json=f"{RUN}/{target}.json",
            markdown=f"{RUN}/{target}.md",
            table=report(
                f"{RUN}/{target}.tsv", caption="report/summary.rst", category=category
            ),
            per_class=report(
                f"{RUN}/per_class_iou{suffix}.tsv",
                caption="report/per_class.rst",
                category=category,
            ),
            provenance=report(
                f"{RUN}/provenance{suffix}.tsv",
                caption="report/provenance.rst",
                category=category,
            ),
        log:
            log_file(target),
        benchmark:
            benchmark_file(target)
        localrule: True
        conda:
            CONDA_ENV
        threads: threads_of("evaluate")
        resources:
            **resources_of("evaluate"),
        params:
            experiments=experiments,
            code=code("summary"),
        script:
            "../workflow_scripts/summary.py"

    # Every seed side by side with mean and sample standard deviation.
    rule:
        name:
            f"{target}_seeds"
        input:
            expand(f"{RUN}/{target}.json", seed=SEEDS),
        output:
            json=f"{OUT}/{target}.json",
            markdown=report(
                f"{OUT}/{target}.md", caption="report/seeds.rst", category=category
            ),
        log:
            log_file(f"{target}_seeds", OUT),
        benchmark:
            benchmark_file(f"{target}_seeds", OUT)
        localrule: True
        conda:
            CONDA_ENV
        threads: threads_of("evaluate")
        resources:
            **resources_of("evaluate"),
        params:
            seeds=SEEDS,
            code=code("summary_seeds"),
        script:
            "../workflow_scripts/summary_seeds.py"


# The paper's Tables IV, V and VIII over seeds, the paper's numbers beside ours, with plots.
# Paper Tables IV and V (the ablation) over seeds: TSV, Markdown with the paper's numbers, plot.
rule ablation_tables:
    input:
        f"{OUT}/summary_ablation.json",
    output:
        **{
            f"{table}_{kind}": (
                report(
                    f"{OUT}/tables/{table}.png",
                    caption=f"report/{table}.rst",
                    category="Paper tables",
                )
                if kind == "png"
                else f"{OUT}/tables/{table}.{kind}"
            )
            for table in ("table4", "table5")
            for kind in ("tsv", "md", "png")
        },
    log:
        log_file("ablation_tables", OUT),
    benchmark:
        benchmark_file("ablation_tables", OUT)
    localrule: True
    conda:
        CONDA_ENV
    threads: threads_of("evaluate")
    resources:
        **resources_of("evaluate"),
    params:
        dataset=config["dataset"]["kind"],
        code=code("ablation_tables"),
    script:
        "../workflow_scripts/ablation_tables.py"


# Paper Table VIII (the λ sweep) over seeds.
rule sweep_table:
    input:
        f"{OUT}/summary_sweep.json",
    output:
        tsv=f"{OUT}/tables/table8.tsv",
        md=f"{OUT}/tables/table8.md",
        png=report(
            f"{OUT}/tables/table8.png",
            caption="report/table8.rst",
            category="Paper tables",
        ),
    log:
        log_file("sweep_table", OUT),
    benchmark:
        benchmark_file("sweep_table", OUT)
    localrule: True
    conda:
        CONDA_ENV
    threads: threads_of("evaluate")
    resources:
        **resources_of("evaluate"),
    params:
        # Which λs each sweep experiment (and i2crc, its centre) has: never read from names.
        lambdas={
            experiment: EXPERIMENTS[experiment] for experiment in SWEEP_EXPERIMENTS
        },
        dataset=config["dataset"]["kind"],
        code=code("sweep_table"),
    script:
        "../workflow_scripts/sweep_table.py"


rule figure_cams:
    input:
        manifest=MANIFEST,
        cams=expand(
            f"{RUN}/{{experiment}}/cams/cams.h5",
            experiment=config["run_experiments"],
            allow_missing=True,
        ),
    output:
        report(
            f"{RUN}/figures/cams.png",
            caption="report/cams.rst",
            category="Figures",
        ),
    log:
        log_file("figure_cams"),
    benchmark:
        benchmark_file("figure_cams")
    localrule: True
    conda:
        CONDA_ENV
    threads: threads_of("evaluate")
    resources:
        **resources_of("evaluate"),
    params:
        experiments=config["run_experiments"],
        num_images=config["evaluation"]["figure_images"],
        code=code("figure_cams"),
    script:
        "../workflow_scripts/figure_cams.py"


# The figures of every seed that the default target asks for.
REPORT_FIGURES = expand(
    [
        f"{RUN}/figures/cams.png",
        f"{RUN}/figures/training.png",
        f"{RUN}/figures/examples_{{experiment}}.png",
    ],
    experiment=config["run_experiments"],
    seed=SEEDS,
)


rule figure_training:
    input:
        classifier=expand(
            f"{RUN}/{{experiment}}/classifier/losses.tsv",
            experiment=config["run_experiments"],
            allow_missing=True,
        ),
        pseudo=expand(
            f"{RUN}/{{experiment}}/segmentation/pseudo/losses.tsv",
            experiment=config["run_experiments"],
            allow_missing=True,
        ),
        refined=expand(
            f"{RUN}/{{experiment}}/segmentation/refined/losses.tsv",
            experiment=config["run_experiments"],
            allow_missing=True,
        ),
    output:
        report(
            f"{RUN}/figures/training.png",
            caption="report/training.rst",
            category="Figures",
        ),
    log:
        log_file("figure_training"),
    benchmark:
        benchmark_file("figure_training")
    localrule: True
    conda:
        CONDA_ENV
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
        cams=f"{RUN}/{{experiment}}/cams/cams.h5",
        pseudo=LABEL_SOURCES["pseudo"],
        refined=LABEL_SOURCES["refined"],
        model=f"{RUN}/{{experiment}}/segmentation/refined/model.pt",
    output:
        report(
            f"{RUN}/figures/examples_{{experiment}}.png",
            caption="report/examples.rst",
            category="Figures",
            labels={"figure": "examples", "experiment": "{experiment}"},
        ),
    log:
        log_file("figure_examples/{experiment}"),
    benchmark:
        benchmark_file("figure_examples/{experiment}")
    localrule: True
    conda:
        CONDA_ENV
    threads: threads_of("evaluate")
    resources:
        **resources_of("evaluate"),
    params:
        num_images=config["evaluation"]["figure_images"],
        scales=config["segmentation"]["inference_scales"],
        fusion=config["segmentation"]["inference_fusion"],
        crf=CRF,
        code=code("figure_examples"),
    script:
        "../workflow_scripts/figure_examples.py"
