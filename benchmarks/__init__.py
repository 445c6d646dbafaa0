"""Measurements: run each as `python -m benchmarks.NAME` from the project folder."""
