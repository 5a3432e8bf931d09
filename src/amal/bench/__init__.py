"""Benchmark suites: methods × seeds on identical splits, results tables generated, never typed."""
