"""Runs inside the sandbox, beside the submission: calls the student's functions as a job
file says and writes what they returned to ``out/`` as plain JSON.

Everything written here comes from inside the student's process, so the grader treats it
as untrusted input: it re-checks types and shapes and replays the recorded episodes.
"""
