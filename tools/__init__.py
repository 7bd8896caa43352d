"""Instructor and student tooling: the nbgrader release and the self-check."""
