"""What several test tiers (and bench/gpu_check.py) share: throwaway copies of the workflow
run with the real Snakemake CLI (`workflow_project`), and VOC 2012 / SBD archives in miniature
(`voc_sbd_archives`). Imported as `tests.helpers.<module>` with the repository root on the path
(pytest's `pythonpath`, or `python -m` from the root)."""
