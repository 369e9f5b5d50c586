"""Benchmarks: mergequeue side by side with what operators would use instead.

`python -m bench` (or `scripts/bench`) runs every scenario in one go on this machine and
prints a table of ratios; see docs/benchmarks.md for a recorded run.
"""
