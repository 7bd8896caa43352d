"""Benchmarks that measure the grading budgets and the speed-ups the assignment relies on."""
