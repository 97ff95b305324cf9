"""One module per pipeline stage, each with a `run()` that a workflow script calls."""
