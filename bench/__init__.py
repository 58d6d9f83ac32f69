"""Dyad's benchmarks: run by hand (``python -m bench.NAME``), never timed in tests.

Each prints readable figures and, as its last line, one JSON object with the named
figures, the machine's CPU count and the parameters used. ``docs/benchmarks.md``
describes what each measures and the figures obtained.
"""
