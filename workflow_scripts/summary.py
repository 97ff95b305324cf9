from i2crc_core.runner import run_stage
from i2crc_core.stages import summary

named = {key: path for key, path in snakemake.input.items() if key not in ("saliency", "manifest")}
run_stage(
    snakemake.log[0],
    summary.run,
    metric_paths={key: path for key, path in named.items() if not key.startswith("sidecar__")},
    sidecar_paths={
        key.removeprefix("sidecar__"): path
        for key, path in named.items()
        if key.startswith("sidecar__")
    },
    saliency_path=snakemake.input.saliency,
    manifest_path=snakemake.input.manifest,
    experiments=snakemake.params.experiments,
    config=snakemake.config,  # for its digest (provenance), not a param: reruns nothing
    json_path=snakemake.output.json,
    markdown_path=snakemake.output.markdown,
    table_path=snakemake.output.table,
    per_class_path=snakemake.output.per_class,
    provenance_path=snakemake.output.provenance,
)
