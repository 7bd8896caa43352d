"""The autograder for the neuroevolution assignment: ``python -m autograder --help``."""
