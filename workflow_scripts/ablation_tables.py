from i2crc_core.runner import run_stage
from i2crc_core.stages import paper_tables

output = snakemake.output
run_stage(
    snakemake.log[0],
    paper_tables.run_ablation,
    summary_path=snakemake.input[0],
    dataset=snakemake.params.dataset,
    out_paths={
        table: {kind: getattr(output, f"{table}_{kind}") for kind in ("tsv", "md", "png")}
        for table in ("table4", "table5")
    },
)
