"""Benchmarks of the insight models (bench.py); the models themselves are in analytics/insights/."""
