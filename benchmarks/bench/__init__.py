"""The benchmark harness behind benchmarks/compare.py and benchmarks/issue2.py."""
