"""One module per pipeline stage: the function each rule's workflow script calls (`run()`
where the module serves one rule; named after the rule's output where it serves several)."""
