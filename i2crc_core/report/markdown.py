"""Markdown tables, the one format every results table of the pipeline is written in."""

from collections.abc import Sequence


def table(header: Sequence[str], rows: Sequence[Sequence[str]], labels: int = 1) -> list[str]:
    """The lines of a table: the first `labels` columns name the row (left-aligned), the others
    hold numbers (right-aligned)."""
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * labels + "---:|" * (len(header) - labels),
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines
