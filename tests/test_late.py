"""The course's late policy (``term/late.py``) on hand-made times: penalties, grace, cap, extensions, LMS verdicts."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from autograder import gradescope_run, stamps
from autograder.term import late

DUE = "2025-03-14 23:59 Europe/London"
DUE_UTC = datetime(2025, 3, 14, 23, 59, tzinfo=timezone.utc)  # London is on UTC in March


def course(**settings) -> late.LatePolicy:
    return late.LatePolicy(
        **{"duedate": DUE, "grace_minutes": 15, "penalty_per_day": 0.1, "max_penalty": 0.3, **settings}
    )


def test_late_policy_grace_penalty_per_day_cap_and_extension():
    """Within the grace period nothing is lost; then a tenth of the score per started day, capped at 30 %; an
    extension moves the student's own due date; the headline says how late and what it cost."""
    policy = course(extensions={"bob": 2})
    cases = [
        ("ann", DUE_UTC - timedelta(hours=1), "on time", 0.0),
        ("ann", DUE_UTC + timedelta(minutes=10), "within grace", 0.0),
        ("ann", DUE_UTC + timedelta(minutes=20), "late", 8.0),
        ("ann", DUE_UTC + timedelta(days=1, hours=3), "late", 16.0),
        ("ann", DUE_UTC + timedelta(days=9), "late", 24.0),
        ("bob", DUE_UTC + timedelta(days=1, hours=3), "on time", 0.0),
        ("bob", DUE_UTC + timedelta(days=2, hours=3), "late", 8.0),
    ]
    for student, stamp, status, penalty in cases:
        got = policy.assess(student, stamp, 80.0)
        assert (got.status, got.penalty) == (status, penalty), (student, stamp, got)
    got = policy.assess("ann", DUE_UTC + timedelta(days=1, hours=3), 80.0)
    assert got.days_late == 2 and got.due == got.assignment_due == "2025-03-14 23:59:00.000000 UTC"
    assert got.headline() == "late by 1 d 3 h: -16 points (20%)", got.headline()
    bob = policy.assess("bob", DUE_UTC, 80.0)
    assert bob.due == "2025-03-16 23:59:00.000000 UTC" and bob.extension_days == 2
    assert bob.assignment_due == "2025-03-14 23:59:00.000000 UTC", "nbgrader's duedate column has no extension"


def test_late_policy_due_date_needs_its_time_zone():
    """A due date in another zone is read in that zone; one without a zone, or a negative penalty, is refused
    in one line naming the setting."""
    assert late.parse_duedate("2025-07-01 12:00 Europe/London") == datetime(2025, 7, 1, 11, 0, tzinfo=timezone.utc)
    assert late.parse_duedate("2025-07-01T12:00:00+02:00") == datetime(2025, 7, 1, 10, 0, tzinfo=timezone.utc)
    with pytest.raises(late.PolicyError, match="time zone") as caught:
        course(duedate="2025-03-14 23:59").check()
    assert "\n" not in str(caught.value) and "c.LatePolicy.duedate" in str(caught.value)
    with pytest.raises(late.PolicyError, match="penalty_per_day must not be negative"):
        course(penalty_per_day=-0.1)
    with pytest.raises(late.PolicyError, match="extensions"):
        course(extensions={"bob": "two days"})


def test_late_policy_read_from_the_course_config(tmp_path):
    """nbgrader_config.py's c.LatePolicy settings are the policy; the repository's own sets no due date."""
    config = tmp_path / "nbgrader_config.py"
    config.write_text(f"c = get_config()\nc.LatePolicy.duedate = {DUE!r}\nc.LatePolicy.counts = 'latest'\n")
    policy = late.course_policy(config)
    assert policy.assignment_due == DUE_UTC and policy.counts == "latest"
    assert "due 2025-03-14 23:59:00.000000 UTC" in policy.describe() and "latest submission counts" in policy.describe()
    assert late.course_policy().duedate == "" and late.course_policy().describe() == ""


def test_late_lms_verdicts_without_a_course_due_date():
    """With no due date of the course's own, Gradescope's due date (the student's, extensions included) decides;
    a Canvas LATE mark shows as late with no penalty and a note saying how to apply one."""
    policy = late.LatePolicy(penalty_per_day=0.5)
    metadata = {
        "created_at": "2025-03-15T10:00:00.000000-07:00",
        "assignment": {"due_date": "2025-03-14T23:00:00.000000-07:00"},
        "users": [{"sid": "1", "assignment": {"due_date": "2025-03-16T23:00:00.000000-07:00"}}],
    }
    lms = gradescope_run.gradescope_due(metadata)
    assert lms == {"lms": "Gradescope", "due": "2025-03-17 06:00:00.000000 UTC"}, lms
    stamp = stamps.parse_time(metadata["created_at"])
    assert policy.assess("1", stamp, 60.0, lms).status == "on time", "the student's own extended due date counts"
    del metadata["users"][0]["assignment"]
    got = policy.assess("1", stamp, 60.0, gradescope_run.gradescope_due(metadata))
    assert (got.status, got.penalty, got.due_from) == ("late", 30.0, "Gradescope"), got

    flagged = policy.assess("2", stamp, 60.0, {"lms": "Canvas", "late": True})
    assert (flagged.status, flagged.penalty) == ("late", 0.0) and "c.LatePolicy.duedate" in flagged.note
    assert course().assess("2", DUE_UTC, 60.0, {"lms": "Canvas", "late": True}).note.startswith("Canvas marked it late")
