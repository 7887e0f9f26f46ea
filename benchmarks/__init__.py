"""Benchmarks, installed as ``tensorcore.benchmarks`` and run with ``tensorcore bench NAME``."""
