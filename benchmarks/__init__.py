"""The performance suite: ``python -m benchmarks [name ...]`` (``make bench``) runs every ``bench_*`` module.

Each module exposes ``main() -> int`` (0 = within its limits) and reports ratios against a floor it
measures in the same run, so the figures do not depend on the machine. Benchmarks that write use a
throwaway test database, never the configured one.
"""
