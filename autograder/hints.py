"""The student-facing messages, loaded from their one copy: ``hints.py`` beside the lesson notebook.

The notebook's visible tests import that file directly, the student kit ships it, and the grader
imports it as ``autograder.hints`` through this loader, so all three print the same words. Like
``evolution.py``, the trusted copy is the release's (``paths.hints_module()``), never a student's.
"""

from __future__ import annotations

import importlib.util
import sys

from autograder import paths

_spec = importlib.util.spec_from_file_location(__name__, paths.hints_module())
_module = importlib.util.module_from_spec(_spec)
sys.modules[__name__] = _module  # `autograder.hints` is the trusted file itself, with its own __file__
_spec.loader.exec_module(_module)
