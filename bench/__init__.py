"""Benchmarks: plain scripts that print JSON. A package so that `python -m bench.gpu_check` runs
from the repository root, where `tests.helpers` imports."""
