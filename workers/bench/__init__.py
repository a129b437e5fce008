"""Benchmarks (not tests): each measures a ratio against the server's ceiling in one run."""
