"""Benchmarks and the gas report: tools that measure the product, not part of it."""
