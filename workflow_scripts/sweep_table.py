from i2crc_core.runner import run_stage
from i2crc_core.stages import paper_tables

run_stage(
    snakemake.log[0],
    paper_tables.run_sweep,
    summary_path=snakemake.input[0],
    lambdas=snakemake.params.lambdas,
    dataset=snakemake.params.dataset,
    out_paths={kind: getattr(snakemake.output, kind) for kind in ("tsv", "md", "png")},
)
