SALIENCY = config["saliency"]


rule saliency:
    input:
        manifest=MANIFEST,
        fetched=rules.fetch_saliency.output.maps if SALIENCY["source"] == "url" else [],
    output:
        maps=directory(SALIENCY_MAPS),
        quality=f"{SALIENCY_ROOT}/saliency/quality.json",
    log:
        log_file("saliency", SALIENCY_ROOT),
    benchmark:
        benchmark_file("saliency", SALIENCY_ROOT)
    conda:
        CONDA_ENV
    threads: threads_of("saliency")
    resources:
        **resources_of("saliency"),
    params:
        source=SALIENCY_SOURCE,
        folder=(
            (lambda wildcards, input: input.fetched or SALIENCY["folder"])
            if SALIENCY_SOURCE == "folder"
            else None
        ),
        # Edits to a user's folder of maps rerun from here; fetched maps are a rule's output.
        folder_files=(
            folder_fingerprint(SALIENCY["folder"])
            if SALIENCY["source"] == "folder"
            else None
        ),
        simulated=SALIENCY["simulated"] if SALIENCY_SOURCE == "simulated" else None,
        seed=seed_param if SALIENCY_SOURCE == "simulated" else None,
        code=code("saliency_maps"),
    script:
        "../workflow_scripts/saliency_maps.py"
