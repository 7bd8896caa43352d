"""`python -m autograder collect`: LMS, Gradescope and exchange downloads into nbgrader's submitted layout."""

from __future__ import annotations

import json
import stat
import zipfile
from pathlib import Path

import pytest

from autograder import cli, intake, paths


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
