"""Benchmarks for mostro-py, run as `python -m bench.<name>` (see bench/README.md).

Not tests: pytest collects only tests/ (tests/bench/ holds their smoke runs). Nothing here
asserts on speed or is imported by the daemon.
"""
