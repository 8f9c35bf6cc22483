"""Benchmarks, each run with its peer or floor in the same run (see README)."""
