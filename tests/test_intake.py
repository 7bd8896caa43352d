"""`python -m autograder collect`: LMS, Gradescope and exchange downloads into nbgrader's submitted layout."""

from __future__ import annotations

import json
import stat
import struct
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from autograder import cli, config, paths
from autograder.term import intake, late


def nb(tag: str) -> bytes:
    """A small notebook holding this assignment's evolve_serial cell, told apart by ``tag``."""
    cell = {
        "cell_type": "code",
        "source": f"# {tag}",
        "outputs": [],
        "execution_count": None,
        "metadata": {"nbgrader": {"grade_id": "evolve_serial", "solution": True}},
    }
    return json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}).encode()


def submitted_tag(submitted: Path, student: str) -> str:
    data = json.loads((submitted / student / paths.ASSIGNMENT / paths.NOTEBOOK).read_text())
    return data["cells"][0]["source"][2:]


def zip_with(path: Path, entries: dict[str, bytes], links: tuple[str, ...] = ()) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=(2025, 3, 1, 12, 0, 0)), data)
        for name in links:
            info = zipfile.ZipInfo(name, date_time=(2025, 3, 1, 12, 0, 0))
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    return path


def rows_by(intake_result) -> dict[str, list[intake.Row]]:
    out: dict[str, list[intake.Row]] = {}
    for row in intake_result.rows:
        out.setdefault(row.student if row.student != "-" else row.source, []).append(row)
    return out


def test_intake_canvas_zip(tmp_path, capsys):
    """Canvas names give the user id (second field, LATE skipped); renamed copies are accepted and said so;
    a second copy is a duplicate; junk, links, unsafe paths and ids are reported; exit status 1."""
    archive = zip_with(
        tmp_path / "submissions.zip",
        {
            "doejane_1001_5001_neuroevolution.ipynb": nb("jane"),
            "roebob_LATE_1002_5002_neuroevolution (1).ipynb": nb("bob"),
            "poeann_1003_5003_neuroevolution.ipynb": nb("ann-first"),
            "poeann_1003_5004_neuroevolution-1.ipynb": nb("ann-second"),
            "kayzed_1004_5005_answers.py": b"print(1)\n",
            "README.txt": b"hello",
            "../evil_1005_5006_neuroevolution.ipynb": nb("evil"),
            "mal_.hidden_5007_neuroevolution.ipynb": nb("hidden"),
            "__MACOSX/._doejane_1001_5001_neuroevolution.ipynb": b"junk",
        },
        links=("lnk_1006_5008_neuroevolution.ipynb",),
    )
    submitted = tmp_path / "submitted"
    status = cli.main(["collect", str(archive), "--submitted", str(submitted)])
    out = capsys.readouterr().out
    assert status == 1, out
    assert sorted(p.name for p in submitted.iterdir()) == ["1001", "1002", "1003"], out
    assert submitted_tag(submitted, "1001") == "jane" and submitted_tag(submitted, "1002") == "bob"
    assert submitted_tag(submitted, "1003") == "ann-first", "the exact name should win over a renamed copy"
    stamp = (submitted / "1001" / paths.ASSIGNMENT / "timestamp.txt").read_text()
    assert stamp == "2025-03-01 12:00:00.000000 UTC", stamp
    lines = out.splitlines()

    def line(*words):
        return next((x for x in lines if all(w in x for w in words)), None)

    assert line("1001", "matched"), out
    assert line("1002", "renamed", "'neuroevolution (1).ipynb' saved as neuroevolution.ipynb"), out
    assert line("1003", "duplicate", "neuroevolution-1.ipynb"), out
    assert line("1004", "no-notebook", "answers.py"), out
    assert line("unmatched", "README.txt"), out
    assert line("refused", "../evil", "unsafe path"), out
    assert line("refused", "lnk_1006", "symbolic link"), out
    assert line("refused", "unsafe student id '.hidden'"), out
    assert "__MACOSX" not in out
    assert line("Canvas-style files: 3 notebook(s) written"), out


def test_intake_gradescope_export(tmp_path):
    """Gradescope's export: ids from each submitter's sid (else email), a group counts for every member."""
    meta = """\
submission_101:
  :submitters:
  - :name: Solo Student
    :sid: '100'
    :email: solo@example.edu
  :created_at: 2025-03-02 10:00:00.000000000 -08:00
submission_102:
  :submitters:
  - :name: Pair One
    :sid: ''
    :email: one@example.edu
  - :name: Pair Two
    :sid: '201'
    :email: two@example.edu
  :created_at: 2025-03-02 11:00:00.000000000 -08:00
"""
    archive = zip_with(
        tmp_path / "export.zip",
        {
            "assignment_77_export/submission_metadata.yml": meta.encode(),
            "assignment_77_export/submission_101/neuroevolution.ipynb": nb("solo"),
            "assignment_77_export/submission_102/work/Neuroevolution_2.ipynb": nb("pair"),
        },
    )
    done = intake.collect(archive, tmp_path / "submitted")
    assert done.layout == "Gradescope export"
    assert sorted(done.written) == ["100", "201", "one@example.edu"], done.rows
    assert submitted_tag(tmp_path / "submitted", "one@example.edu") == "pair"
    assert [r.status for r in rows_by(done)["201"]] == ["renamed"]
    stamp = (tmp_path / "submitted" / "100" / paths.ASSIGNMENT / "timestamp.txt").read_text()
    assert stamp == "2025-03-02 18:00:00.000000 UTC", stamp


def test_intake_moodle_folders_and_a_notebook_found_by_its_cells(tmp_path):
    """Moodle's <name>_<id>_assignsubmission_file_ folders give the id; an oddly named notebook is used
    when it holds this assignment's cells."""
    root = tmp_path / "moodle"
    (root / "Jane Doe_555_assignsubmission_file_").mkdir(parents=True)
    (root / "Jane Doe_555_assignsubmission_file_" / "neuroevolution-2.ipynb").write_bytes(nb("jane"))
    (root / "bob").mkdir()
    (root / "bob" / "Untitled.ipynb").write_bytes(nb("bob"))
    (root / "bob" / "other.ipynb").write_bytes(b'{"cells": []}')
    done = intake.collect(root, tmp_path / "submitted")
    assert sorted(done.written) == ["555", "bob"]
    assert submitted_tag(tmp_path / "submitted", "bob") == "bob"
    assert {r.student: r.status for r in done.rows} == {"555": "renamed", "bob": "renamed"}


def test_intake_folder_symlinks_are_refused(tmp_path):
    """A symlinked notebook in a folder download is refused, never followed."""
    secret = tmp_path / "secret.ipynb"
    secret.write_bytes(nb("secret"))
    root = tmp_path / "download"
    (root / "eve").mkdir(parents=True)
    (root / "eve" / paths.NOTEBOOK).symlink_to(secret)
    (root / "amy").mkdir()
    (root / "amy" / paths.NOTEBOOK).write_bytes(nb("amy"))
    done = intake.collect(root, tmp_path / "submitted")
    assert done.written == ["amy"]
    assert any(r.status == "refused" and "eve" in r.source and r.note == "symbolic link" for r in done.rows)
    assert not (tmp_path / "submitted" / "eve").exists()


def test_intake_exchange_keeps_latest_and_secret_and_never_replaces_a_later_copy(tmp_path):
    """nbgrader's exchange: latest submission per student, with its timestamp.txt and submission_secret.txt;
    a copy already in SUBMITTED that is later than the download is kept."""
    inbound = tmp_path / "exchange" / "course" / "inbound"
    for stamp, tag in (("2025-03-01 09:00:00.000000 UTC", "old"), ("2025-03-03 09:00:00.000000 UTC", "new")):
        folder = inbound / f"alice+{paths.ASSIGNMENT}+{stamp}+r{tag}"
        folder.mkdir(parents=True)
        (folder / paths.NOTEBOOK).write_bytes(nb(tag))
        (folder / "timestamp.txt").write_text(stamp)
        (folder / "submission_secret.txt").write_text(f"secret-{tag}")
    submitted = tmp_path / "submitted"
    done = intake.collect(inbound, submitted)
    assert done.layout == "nbgrader exchange" and done.written == ["alice"]
    target = submitted / "alice" / paths.ASSIGNMENT
    assert submitted_tag(submitted, "alice") == "new"
    assert (target / "submission_secret.txt").read_text() == "secret-new"
    assert (target / "timestamp.txt").read_text() == "2025-03-03 09:00:00.000000 UTC"
    assert [r.status for r in done.rows if r.student == "alice"] == ["duplicate", "matched"] or sorted(
        r.status for r in done.rows if r.student == "alice"
    ) == ["duplicate", "matched"]

    (target / "timestamp.txt").write_text("2025-04-01 09:00:00.000000 UTC")  # a later resubmission, collected before
    (target / paths.NOTEBOOK).write_bytes(nb("latest"))
    again = intake.collect(inbound, submitted)
    assert submitted_tag(submitted, "alice") == "latest"
    assert [r.status for r in again.rows if r.student == "alice" and r.status != "duplicate"] == ["kept-newer"]


def test_intake_bad_source_is_one_line(tmp_path, capsys):
    """A missing source or a file that is not a zip: status 2, one line saying what to pass."""
    (tmp_path / "notes.txt").write_text("not a zip")
    for source, expected in (
        (tmp_path / "nope.zip", "no file or folder"),
        (tmp_path / "notes.txt", "not a readable zip"),
    ):
        assert cli.main(["collect", str(source), "--submitted", str(tmp_path / "s")]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and expected in err, err


@pytest.mark.parametrize(
    "name",
    ["neuroevolution (1).ipynb", "neuroevolution-2.ipynb", "Neuroevolution copy.ipynb", "neuroevolution_3.ipynb"],
)
def test_intake_renamed_copies_are_recognised(name):
    """Copies a browser or an LMS renamed still count as the assignment's notebook."""
    chosen, how = intake.pick_notebook([intake.File(intake.PurePosixPath(name), None, 0, lambda: b"{}")])
    assert chosen is not None and how == "renamed"


def test_intake_ids_a_spreadsheet_would_run_are_refused(tmp_path):
    """A student id starting with a formula character (@ too) is refused with what to do; an @ inside is fine."""
    archive = zip_with(
        tmp_path / "folders.zip",
        {
            f"@mallory/{paths.NOTEBOOK}": nb("mallory"),
            f"-2+3/{paths.NOTEBOOK}": nb("minus"),
            f"alice@uni.edu/{paths.NOTEBOOK}": nb("alice"),
        },
    )
    done = intake.collect(archive, tmp_path / "submitted")
    assert done.written == ["alice@uni.edu"], done.rows
    assert sorted(p.name for p in (tmp_path / "submitted").iterdir()) == ["alice@uni.edu"]
    for student in ("@mallory", "-2+3"):
        (row,) = rows_by(done)[student]
        assert row.status == "refused" and "spreadsheet runs as a formula" in row.note, row
        assert "copy its notebook to" in row.note and "by hand" in row.note, row


def patch_entry(archive: Path, name: str, local_offset: int, central_offset: int, value: int) -> None:
    """Overwrite one 4-byte field of entry ``name`` in its local header and its central directory record."""
    data = bytearray(archive.read_bytes())
    encoded = name.encode()
    # signature, offset of the field, offset of the entry's name (after the fixed part of the record)
    for signature, field_at, name_at in ((b"PK\x03\x04", local_offset, 30), (b"PK\x01\x02", central_offset, 46)):
        at = data.find(signature)
        while at >= 0:
            if data[at + name_at : at + name_at + len(encoded)] == encoded:
                struct.pack_into("<I", data, at + field_at, value)
            at = data.find(signature, at + 1)
    archive.write_bytes(data)


def zip_with_zeros(path: Path, honest: dict[str, bytes], name: str, size: int) -> Path:
    """A zip of ``honest`` entries plus ``name``: ``size`` zero bytes, which deflate to about size / 1000."""
    zip_with(path, honest)
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as zf, zf.open(name, "w") as fh:
        block = bytes(2**20)
        for _ in range(size // len(block)):
            fh.write(block)
    return path


def collect_measured(archive: Path, submitted: Path, capsys) -> tuple[int, str, int]:
    """(exit status, printed table, peak bytes Python allocated) of `collect ARCHIVE`."""
    tracemalloc.start()
    try:
        status = cli.main(["collect", str(archive), "--submitted", str(submitted)])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return status, capsys.readouterr().out, peak


def test_intake_zip_entry_lying_about_its_size_is_refused_alone(tmp_path, capsys):
    """An entry whose headers declare 1,000 bytes but that inflates to twice the notebook cap is refused
    as damaged, without being inflated; the honest student of the same zip is written."""
    name = f"mallory/{paths.NOTEBOOK}"
    archive = zip_with_zeros(
        tmp_path / "lying.zip", {f"alice/{paths.NOTEBOOK}": nb("alice")}, name, 2 * config.MAX_NOTEBOOK_BYTES
    )
    patch_entry(archive, name, 22, 24, 1000)  # file_size in the local header, uncompressed size in the directory
    assert zipfile.ZipFile(archive).getinfo(name).file_size == 1000
    submitted = tmp_path / "submitted"
    status, out, peak = collect_measured(archive, submitted, capsys)
    assert status == 1, out
    assert sorted(p.name for p in submitted.iterdir()) == ["alice"] and submitted_tag(submitted, "alice") == "alice"
    line = next((x for x in out.splitlines() if "refused" in x and "mallory" in x), "")
    assert "damaged in the zip" in line and "CRC" in line and "download the submissions again" in line, out
    assert peak < 8 * 2**20, f"collect held {peak / 2**20:.0f} MiB: the entry was inflated whole"


def test_intake_zip_entry_over_the_notebook_cap_is_refused_alone(tmp_path, capsys):
    """An entry that truly unpacks to more than the notebook cap is refused once past the cap, a chunk at a
    time (memory stays small); the honest student of the same zip is written."""
    name = f"mallory/{paths.NOTEBOOK}"
    archive = zip_with_zeros(
        tmp_path / "big.zip", {f"alice/{paths.NOTEBOOK}": nb("alice")}, name, 2 * config.MAX_NOTEBOOK_BYTES
    )
    submitted = tmp_path / "submitted"
    status, out, peak = collect_measured(archive, submitted, capsys)
    assert status == 1, out
    assert sorted(p.name for p in submitted.iterdir()) == ["alice"]
    line = next((x for x in out.splitlines() if "refused" in x and "mallory" in x), "")
    assert f"more than {config.MAX_NOTEBOOK_BYTES // 2**20} MiB" in line and "clear its outputs" in line, out
    assert peak < 8 * 2**20, f"collect held {peak / 2**20:.0f} MiB: the entry was kept, not streamed"


def test_intake_zip_entry_at_the_notebook_cap_is_written_holding_one_copy(tmp_path, capsys):
    """An entry of exactly the notebook cap is collected, and reading it holds its bytes once, not twice."""
    archive = zip_with_zeros(tmp_path / "full.zip", {}, f"alice/{paths.NOTEBOOK}", config.MAX_NOTEBOOK_BYTES)
    submitted = tmp_path / "submitted"
    status, out, peak = collect_measured(archive, submitted, capsys)
    assert status == 0, out
    written = submitted / "alice" / paths.ASSIGNMENT / paths.NOTEBOOK
    assert written.stat().st_size == config.MAX_NOTEBOOK_BYTES, out
    assert peak < config.MAX_NOTEBOOK_BYTES + 2**20, f"collect held {peak / 2**20:.1f} MiB for a 32 MiB entry"


def test_intake_zip_entry_failing_its_crc_is_refused_alone(tmp_path, capsys):
    """A notebook whose CRC does not match its bytes is refused with a row; the other student is written."""
    archive = zip_with(
        tmp_path / "corrupt.zip", {f"alice/{paths.NOTEBOOK}": nb("alice"), f"bob/{paths.NOTEBOOK}": nb("bob")}
    )
    patch_entry(archive, f"bob/{paths.NOTEBOOK}", 14, 16, 0xDEADBEEF)  # the CRC-32 field of both records
    submitted = tmp_path / "submitted"
    assert cli.main(["collect", str(archive), "--submitted", str(submitted)]) == 1
    out = capsys.readouterr().out
    assert sorted(p.name for p in submitted.iterdir()) == ["alice"], out
    line = next((x for x in out.splitlines() if "refused" in x and "bob/" in x), "")
    assert "Bad CRC-32" in line and "ask the student to submit again" in line, out
    assert "Traceback" not in out


def canvas_zip(path: Path, entries: dict[str, tuple[bytes, tuple]]) -> Path:
    """A Canvas-style zip whose entries carry the submission times Canvas recorded."""
    with zipfile.ZipFile(path, "w") as zf:
        for name, (data, when) in entries.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=when), data)
    return path


def test_intake_late_resubmission_never_replaces_the_on_time_one(tmp_path, capsys):
    """A later download holding a LATE resubmission keeps the on-time notebook graded and the late one beside it,
    the table saying which counts and how late; with counts = 'latest' the late one is graded instead and the
    on-time one kept; without a due date of the course's own, Canvas's LATE mark tells them apart."""
    on_time = canvas_zip(
        tmp_path / "first.zip", {"doejane_1001_5001_neuroevolution.ipynb": (nb("on-time"), (2025, 3, 14, 20, 0, 0))}
    )
    resubmitted = canvas_zip(
        tmp_path / "second.zip",
        {"doejane_LATE_1001_5002_neuroevolution.ipynb": (nb("late"), (2025, 3, 16, 9, 30, 0))},
    )
    policy = late.LatePolicy(duedate="2025-03-14 23:59 UTC", penalty_per_day=0.1)
    submitted = tmp_path / "submitted"
    intake.collect(on_time, submitted, policy=policy)
    done = intake.collect(resubmitted, submitted, policy=policy)
    folder = submitted / "1001" / paths.ASSIGNMENT
    kept = sorted((folder / intake.KEPT_DIR).iterdir())
    assert submitted_tag(submitted, "1001") == "on-time" and [p.name for p in kept] == ["2025-03-16T09-30-00Z"]
    assert json.loads((kept[0] / paths.NOTEBOOK).read_text())["cells"][0]["source"] == "# late"
    assert json.loads((kept[0] / late.LMS_FILE).read_text()) == {"late": True, "lms": "Canvas"}
    text = intake.table(done, submitted)
    row = next(x for x in text.splitlines() if "not-counted" in x)
    assert "late by 1 d 9 h" in row and "the on-time one counts" in row and intake.KEPT_DIR in row, text
    assert "late policy: due 2025-03-14 23:59:00.000000 UTC" in text, text

    flipped = intake.collect(resubmitted, submitted, policy=late.LatePolicy(duedate=policy.duedate, counts="latest"))
    assert submitted_tag(submitted, "1001") == "late", flipped.rows
    kept = sorted((folder / intake.KEPT_DIR).iterdir())
    assert [json.loads((p / paths.NOTEBOOK).read_text())["cells"][0]["source"] for p in kept] == ["# on-time"]
    assert (folder / "timestamp.txt").read_text() == "2025-03-16 09:30:00.000000 UTC"
    assert {r.status for r in flipped.rows} >= {"restored", "not-counted"}, flipped.rows

    no_due_date = tmp_path / "no-due-date"
    intake.collect(on_time, no_due_date)
    unset = intake.collect(resubmitted, no_due_date)
    assert submitted_tag(no_due_date, "1001") == "on-time", "Canvas's own LATE mark decides without a due date"
    assert [r.when for r in unset.rows if r.status == "not-counted"] == ["marked late by the LMS"]


def test_intake_exchange_on_time_and_late_in_one_download(tmp_path):
    """nbgrader's exchange with an on-time and a later late submission: the on-time one is graded, the late one
    kept with its own timestamp.txt, and collecting again changes nothing."""
    inbound = tmp_path / "exchange" / "course" / "inbound"
    for stamp, tag in (("2025-03-14 22:00:00.000000 UTC", "on-time"), ("2025-03-15 08:00:00.000000 UTC", "late")):
        folder = inbound / f"alice+{paths.ASSIGNMENT}+{stamp}"
        folder.mkdir(parents=True)
        (folder / paths.NOTEBOOK).write_bytes(nb(tag))
        (folder / "timestamp.txt").write_text(stamp)
    policy = late.LatePolicy(duedate="2025-03-14T23:59:00+00:00")
    submitted = tmp_path / "submitted"
    first = intake.collect(inbound, submitted, policy=policy)
    assert submitted_tag(submitted, "alice") == "on-time", first.rows
    (kept,) = (submitted / "alice" / paths.ASSIGNMENT / intake.KEPT_DIR).iterdir()
    assert (kept / "timestamp.txt").read_text() == "2025-03-15 08:00:00.000000 UTC"
    again = intake.collect(inbound, submitted, policy=policy)
    assert sorted(r.status for r in again.rows) == ["not-counted", "unchanged"], again.rows
    assert len(list((submitted / "alice" / paths.ASSIGNMENT / intake.KEPT_DIR).iterdir())) == 1


def test_intake_student_work_is_ignored_by_git_but_the_demos_are_not():
    """A collected notebook, the grades, the staged feedback and dist/ are ignored by git; the shipped demo
    students stay tracked and are not ignored."""
    if not (paths.ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    import subprocess

    def ignored(path: str) -> bool:
        done = subprocess.run(["git", "check-ignore", "--no-index", "-q", path], cwd=paths.ROOT)
        assert done.returncode in (0, 1), f"git check-ignore failed on {path}"
        return done.returncode == 0

    for path in (
        f"submitted/1001/{paths.ASSIGNMENT}/{paths.NOTEBOOK}",
        f"submitted/jane@uni.edu/{paths.ASSIGNMENT}/{intake.KEPT_DIR}/x/{paths.NOTEBOOK}",
        "grades/1001/results.json",
        f"feedback/1001/{paths.ASSIGNMENT}/{paths.ASSIGNMENT}.html",
        "dist/feedback/1001.zip",
    ):
        assert ignored(path), f"{path} is not ignored by git"
    tracked = subprocess.run(["git", "ls-files", "submitted"], cwd=paths.ROOT, capture_output=True, text=True)
    demos = tracked.stdout.split()
    assert len(demos) == 3 and all(p.startswith("submitted/demo-") for p in demos), demos
    assert not any(ignored(path) for path in demos), "a shipped demo student is ignored"
