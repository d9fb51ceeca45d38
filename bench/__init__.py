"""Benchmarks on the local chains: the chain services against direct client calls, and whole swaps.

`python -m bench` (or `make bench`) prints one JSON report on stdout; docs/benchmarks.md explains it.
"""
