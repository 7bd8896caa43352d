"""Late work: the course's due date and penalty policy, set once in ``nbgrader_config.py``.

::

    c.LatePolicy.duedate = "2025-03-14 23:59 Europe/London"  # "" (the default): no due date
    c.LatePolicy.grace_minutes = 15        # this long after the due date still counts as on time
    c.LatePolicy.penalty_per_day = 0.1     # share of the score lost per day, or part of a day, late
    c.LatePolicy.max_penalty = 0.5         # the most a late submission loses (a share of its score)
    c.LatePolicy.extensions = {"alice": 2} # days added to a student's due date
    c.LatePolicy.counts = "on-time"        # before and after the due date: which submission counts

nbgrader's own ``AssignLatePenalties`` uses it through ``late_plugin.CoursePenalty`` (its
LateSubmissionPlugin), and the grader writes the due date, each extension and each penalty into
the gradebook, so ``nbgrader export``, grades.csv, results.json, the LMS upload and the feedback
pages all show one penalty and one score. When the course sets no due date, the LMS's own is
used where the download carries one (Gradescope's ``due_date``, extensions included), and a
submission the LMS marked late (Canvas's ``LATE``) is shown as late without a penalty.

``collect`` keeps an on-time submission when a late one follows it (and the reverse): the
policy's ``counts`` decides which one is graded, the other is kept beside it.
"""

from __future__ import annotations

import hashlib
import json
import math
import zoneinfo
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from traitlets import Dict, Enum, Float, Unicode, validate
from traitlets.config import Configurable

from autograder import paths
from autograder.stamps import format_time, parse_time, submission_time

LMS_FILE = "lms.json"
"""Beside a collected notebook: what the LMS said about the submission (its name, late flag, due date)."""
DAY = 86400.0


class PolicyError(Exception):
    """The late policy in nbgrader_config.py cannot be used; the message says what to change."""


def parse_duedate(text: str) -> datetime:
    """``2025-03-14 23:59 Europe/London``, ``2025-03-14T23:59:00+01:00`` or ``... UTC``; PolicyError otherwise."""
    head, _, zone = text.strip().rpartition(" ")
    if head and not zone[:1].isdigit() and zone[:1] not in "+-":
        try:
            local = datetime.fromisoformat(head.replace(" ", "T"))
            tz = timezone.utc if zone.upper() in ("UTC", "Z", "GMT") else zoneinfo.ZoneInfo(zone)
        except (ValueError, zoneinfo.ZoneInfoNotFoundError):
            local = None
        if local is not None and local.tzinfo is None:
            return local.replace(tzinfo=tz)
    stamp = None
    try:
        stamp = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        pass
    if stamp is None or stamp.tzinfo is None:
        raise PolicyError(
            f"c.LatePolicy.duedate = {text!r} in nbgrader_config.py is not a date with its time zone: "
            "write it like '2025-03-14 23:59 Europe/London' or '2025-03-14T23:59:00+00:00'"
        )
    return stamp


def _describe(seconds: float) -> str:
    """``1 d 3 h`` / ``2 h 5 min`` / ``40 min``: how late, for tables and pages."""
    minutes = int(seconds // 60)
    days, hours, mins = minutes // 1440, minutes % 1440 // 60, minutes % 60
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {mins} min" if mins else f"{hours} h"
    return f"{max(mins, 1)} min"


@dataclass
class Late:
    """How one submission stands against the due date, as results.json records it (``extra_data.late``)."""

    status: str
    """``on time``, ``within grace``, ``late``, ``no due date`` or ``no timestamp``."""
    timestamp: str | None
    due: str | None
    """This student's due date, extension included (nbgrader's timestamp format)."""
    assignment_due: str | None
    """The assignment's due date without extensions: nbgrader's ``duedate`` column."""
    due_from: str | None
    """Where the due date came from: ``course`` (nbgrader_config.py) or the LMS's name."""
    extension_days: float
    seconds_late: float
    days_late: int
    share: float
    """Share of the score the penalty takes."""
    penalty: float
    """Points taken off (nbgrader's ``late_submission_penalty``)."""
    lms_late: bool | None
    note: str

    def when(self) -> str:
        """Just the timing, for collect's table (which knows no score yet): ``late by 1 d 3 h``."""
        if self.status == "late" and self.seconds_late:
            return f"late by {_describe(self.seconds_late)}"
        if self.status == "late":
            return "marked late by the LMS"
        return {"within grace": "in grace period", "no due date": ""}.get(self.status, self.status)

    def headline(self) -> str:
        """One line for tables and pages: ``late by 1 d 3 h: -5.1 points (10 %)``."""
        if self.status == "late":
            if not self.seconds_late:
                return "marked late by the LMS (no due date set, no penalty)"
            cost = f": -{self.penalty:g} points ({self.share:.0%})" if self.penalty else ", no penalty"
            return f"late by {_describe(self.seconds_late)}{cost}"
        if self.status == "within grace":
            return f"{_describe(self.seconds_late)} after the due date, within the grace period"
        return self.status


class LatePolicy(Configurable):
    """The course's due date and late penalty (``c.LatePolicy`` in nbgrader_config.py)."""

    duedate = Unicode("", help="The assignment's due date with its time zone ('' for none).").tag(config=True)
    grace_minutes = Float(0.0, help="Minutes after the due date that still count as on time.").tag(config=True)
    penalty_per_day = Float(0.0, help="Share of the score lost per day, or part of a day, late.").tag(config=True)
    max_penalty = Float(1.0, help="Largest share of the score a late submission loses.").tag(config=True)
    extensions = Dict({}, help="Student id -> days added to that student's due date.").tag(config=True)
    counts = Enum(
        ("on-time", "latest"),
        default_value="on-time",
        help="When a student submitted before and after the due date: 'on-time' grades the latest "
        "on-time submission, 'latest' the latest one (with its penalty); the other is kept beside it.",
    ).tag(config=True)

    @validate("grace_minutes", "penalty_per_day")
    def _not_negative(self, proposal):
        if proposal["value"] < 0:
            raise PolicyError(f"c.LatePolicy.{proposal['trait'].name} must not be negative")
        return proposal["value"]

    @validate("max_penalty")
    def _a_share(self, proposal):
        if not 0 <= proposal["value"] <= 1:
            raise PolicyError("c.LatePolicy.max_penalty is a share of the score, from 0 to 1")
        return proposal["value"]

    @validate("extensions")
    def _days(self, proposal):
        for student, days in proposal["value"].items():
            if isinstance(days, bool) or not isinstance(days, (int, float)) or not math.isfinite(days) or days < 0:
                raise PolicyError(f"c.LatePolicy.extensions[{student!r}] must be a number of days, got {days!r}")
        return proposal["value"]

    def check(self) -> None:
        """PolicyError (one line) when a setting cannot be used."""
        if self.duedate:
            parse_duedate(self.duedate)

    @property
    def assignment_due(self) -> datetime | None:
        return parse_duedate(self.duedate) if self.duedate else None

    def extension(self, student: str) -> timedelta:
        return timedelta(days=float(self.extensions.get(student, 0)))

    def due_for(self, student: str) -> datetime | None:
        """This student's due date from the course settings, extension included (None: no due date)."""
        due = self.assignment_due
        return due + self.extension(student) if due else None

    def penalty_share(self, seconds_late: float) -> float:
        """Share of the score taken off a submission ``seconds_late`` after its due date."""
        if seconds_late <= self.grace_minutes * 60:
            return 0.0
        return min(self.max_penalty, self.penalty_per_day * math.ceil(seconds_late / DAY))

    def late_submission_penalty(self, student_id: str, score: float, total_seconds_late: float) -> float:
        """Points taken off (nbgrader's LateSubmissionPlugin method, called by ``late_plugin.CoursePenalty``)."""
        return round(max(score, 0.0) * self.penalty_share(total_seconds_late), 2)

    def is_late(self, student: str, stamp: datetime | None, lms: dict | None = None) -> bool:
        """Past the due date and the grace period (or marked late by the LMS when no due date is known)."""
        due = self.due_for(student) or parse_time((lms or {}).get("due") or "")
        if due is None:
            return (lms or {}).get("late") is True
        return stamp is not None and (stamp - due).total_seconds() > self.grace_minutes * 60

    def assess(self, student: str, stamp: datetime | None, raw_score: float, lms: dict | None = None) -> Late:
        """How a submission made at ``stamp`` stands, and what it loses from ``raw_score``."""
        lms = lms or {}
        lms_name = lms.get("lms") or "the LMS"
        lms_late = lms.get("late") if isinstance(lms.get("late"), bool) else None
        course_due, lms_due = self.due_for(student), parse_time(lms.get("due") or "")
        due = course_due or lms_due
        assignment_due = self.assignment_due if course_due else lms_due
        late = Late(
            status="no due date",
            timestamp=format_time(stamp) if stamp else None,
            due=format_time(due) if due else None,
            assignment_due=format_time(assignment_due) if assignment_due else None,
            due_from="course" if course_due else (lms_name if due else None),
            extension_days=float(self.extensions.get(student, 0)) if course_due else 0.0,
            seconds_late=0.0,
            days_late=0,
            share=0.0,
            penalty=0.0,
            lms_late=lms_late,
            note="",
        )
        if due is None:
            if lms_late:
                late.status = "late"
                late.note = (
                    f"{lms_name} marked it late; set c.LatePolicy.duedate in nbgrader_config.py to apply a penalty"
                )
            return late
        if stamp is None:
            late.status = "no timestamp"
            late.note = "no submission time was collected (timestamp.txt): treated as on time"
            return late
        late.seconds_late = max(0.0, (stamp - due).total_seconds())
        late.share = self.penalty_share(late.seconds_late)
        late.penalty = self.late_submission_penalty(student, raw_score, late.seconds_late)
        if late.seconds_late == 0:
            late.status = "on time"
        elif late.seconds_late <= self.grace_minutes * 60:
            late.status = "within grace"
        else:
            late.status = "late"
            late.days_late = math.ceil(late.seconds_late / DAY)
        if lms_late is True and late.status != "late":
            late.note = f"{lms_name} marked it late, but it is {late.status} by the due date {late.due}"
        elif lms_late is False and late.status == "late":
            late.note = f"{lms_name} did not mark it late"
        return late

    def describe(self) -> str:
        """The policy in words, for collect's table ("" when the course sets no due date)."""
        if not self.duedate:
            return ""
        parts = [f"due {format_time(self.assignment_due)}"]
        if self.grace_minutes:
            parts.append(f"{self.grace_minutes:g} min grace")
        if self.penalty_per_day:
            parts.append(f"{self.penalty_per_day:.0%} of the score per day late, at most {self.max_penalty:.0%}")
        if self.extensions:
            parts.append(f"{len(self.extensions)} extension(s)")
        parts.append(f"the {'on-time' if self.counts == 'on-time' else 'latest'} submission counts")
        return ", ".join(parts)

    def digest(self) -> str:
        """Changes whenever a setting that changes a penalty changes."""
        settings = {name: getattr(self, name) for name in self.trait_names(config=True)}
        return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def course_policy(config_file: Path | None = None) -> LatePolicy:
    """The policy nbgrader_config.py sets (the defaults, no due date, when it sets none); PolicyError if unusable."""
    config = paths.course_config(config_file)
    try:
        policy = LatePolicy(config=config)
        policy.check()
    except PolicyError:
        raise
    except Exception as exc:  # traitlets' own type errors: a setting of the wrong kind
        raise PolicyError(f"the late policy in nbgrader_config.py cannot be used: {exc}") from None
    return policy


# --- what a submission folder says about its time -------------------------------------------------


def lms_info(folder: Path) -> dict:
    """What the LMS said about the submission in ``folder`` (``lms.json``), {} when nothing."""
    path = Path(folder) / LMS_FILE
    try:
        if path.is_symlink() or not path.is_file():
            return {}
        data = json.loads(path.read_text(encoding="utf-8")[:4096])
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_lms_info(folder: Path, info: dict) -> None:
    """Record what the LMS said (nothing is written when it said nothing)."""
    kept = {k: v for k, v in info.items() if v is not None}
    path = Path(folder) / LMS_FILE
    if {k for k in kept if k != "lms"}:
        path.write_text(json.dumps(kept, sort_keys=True), encoding="utf-8")
    elif path.is_file() and not path.is_symlink():
        path.unlink()


# --- results.json -------------------------------------------------------------------------------


def apply(doc: dict, policy: LatePolicy, student: str, folder: Path) -> bool:
    """Set ``doc``'s late record, penalty and final score from the submission in ``folder``; True if it changed.

    The raw score is always the tests' sum, so applying a changed policy (an extension granted, a
    penalty changed) again gives the same result as grading with it."""
    from autograder import results

    text, stamp = submission_time(folder)
    extra = doc.setdefault("extra_data", {})
    raw = results.raw_score(doc)
    late = policy.assess(student, stamp, raw, lms_info(folder))
    record = {**asdict(late), "late": late.status == "late", "headline": late.headline(), "policy": policy.digest()}
    before = json.dumps([doc.get("score"), doc.get("output"), extra.get("late"), extra.get("timestamp")])
    extra["timestamp"] = text
    results.set_late(doc, record)
    return before != json.dumps([doc.get("score"), doc.get("output"), extra.get("late"), extra.get("timestamp")])
