"""The grading tests: pytest modules reading one student's collected observations.

Run by the grader as ``python -m pytest autograder/checks --observations FILE --report FILE``
(see ``autograder.scoring``); each ``test_<category>.py`` holds one category's tests.
"""
