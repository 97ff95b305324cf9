"""Reports: figures, the summary plots, Markdown tables, the paper's reference numbers."""
