"""Benchmarks that measure the grading budgets and the speed-ups the assignment relies on."""

import sys

from autograder import paths

# The benchmarks import the helper as plain ``evolution``, as the notebook does. Putting its folder
# on sys.path here, in the package, makes that work whatever a module imports first; Pool workers
# inherit sys.path under every start method, so they find it too.
if str(paths.SOURCE_DIR) not in sys.path:
    sys.path.insert(0, str(paths.SOURCE_DIR))
