"""The plumbing every other part stands on: the config and its schema, error types, atomic file
I/O, the CAM store, code fingerprints, provenance, the machine's GPUs and the SLURM check."""
