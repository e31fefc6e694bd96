"""The benchmarks: each ``bench_*`` module measures one figure and writes its section of BENCHMARKS.md.

Run one with ``python -m bench.<module> [--no-write]``, all of them with ``python -m bench`` (``make bench``), or
the short smoke subset with ``python -m bench --quick`` (``make bench-quick``). Helpers shared by several
benchmarks (CPU accounting, the BENCHMARKS.md writer, trend readers) live beside them in this package.
"""
