from i2crc_core.runner import run_stage
from i2crc_core.stages import summary_seeds

run_stage(
    snakemake.log[0],
    summary_seeds.run,
    summary_paths=list(snakemake.input),
    seeds=snakemake.params.seeds,
    json_path=snakemake.output.json,
    markdown_path=snakemake.output.markdown,
)
