"""Benchmarks: scripts run by hand that print speed and quality figures (not tests)."""
