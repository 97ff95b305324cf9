from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


report: "rules/report/workflow.rst"


include: "rules/common.smk"
include: "rules/dataset.smk"
include: "rules/assets.smk"
include: "rules/saliency.smk"
include: "rules/pretraining.smk"
include: "rules/classifier.smk"
include: "rules/cams.smk"
include: "rules/pseudo_labels.smk"
include: "rules/segmentation.smk"
include: "rules/refinement.smk"
include: "rules/evaluation.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        f"{OUT}/summary.json",
        f"{OUT}/summary.md",
        REPORT_FIGURES,


# Paper Tables IV and V: the ablation rows, per seed and over the seeds, with plots.
rule ablation:
    input:
        f"{OUT}/summary_ablation.json",
        f"{OUT}/summary_ablation.md",
        rules.ablation_tables.output,


# The paper's claims: Tables IV and V (the ablation, both retrainings per row) and Table VIII
# (the λ sweep), each per seed and over the seeds, with plots.
rule paper:
    input:
        rules.ablation.input,
        f"{OUT}/summary_sweep.json",
        f"{OUT}/summary_sweep.md",
        rules.sweep_table.output,
