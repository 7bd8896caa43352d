"""The student kit: exactly the student's files, nothing of the instructor's, and a self-check that
works from the unzipped kit in an environment built from the kit's own requirements."""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import types
import zipfile
from pathlib import Path

import nbformat
import pytest

from autograder import demo, paths
from autograder.paths import ROOT
from tools import release, selfcheck, student_kit

KIT_FILES = {
    "README.md",
    "assets/car.png",
    "check.py",
    "evolution.py",
    "hints.py",
    "neuroevolution.ipynb",
    "parallel_demos.py",
    "render.py",
    "requirements.txt",
}
SOURCE_NOTEBOOK = paths.reference_notebook()
REGION = re.compile(r"### BEGIN (SOLUTION|HIDDEN TESTS)\n(.*?)### END \1", re.S)


@pytest.fixture(scope="module")
def files() -> dict[str, bytes]:
    return student_kit.kit_files()


def instructor_only_lines() -> set[str]:
    """Stripped lines that occur in the source notebook only inside solution or hidden-test regions."""
    inside, outside = set(), set()
    for cell in nbformat.read(SOURCE_NOTEBOOK, as_version=4).cells:
        for _, block in REGION.findall(cell.source):
            inside.update(line.strip() for line in block.splitlines() if line.strip())
        outside.update(line.strip() for line in REGION.sub("", cell.source).splitlines() if line.strip())
    return inside - outside


def test_student_kit_holds_the_student_files_only(files):
    """The kit is the release (with Part 1's module and the hints), the self-check, render.py, requirements and
    a README; the lesson's modules are the release's copies, the ones the grader reads."""
    assert set(files) == KIT_FILES, f"unexpected kit contents: {sorted(set(files) ^ KIT_FILES)}"
    for module in paths.LESSON_MODULES:
        assert files[module] == (paths.RELEASE_DIR / module).read_bytes(), f"the kit's {module} is not the release's"
    assert files["hints.py"] == paths.hints_module().read_bytes(), "the kit's hints differ from the grader's"


def test_student_kit_leaks_nothing_of_the_instructor(files):
    """No solution or hidden-test line or marker, and no import of the grader, reaches any kit file."""
    secret = instructor_only_lines()
    assert len(secret) > 20, "the source notebook's solution and hidden-test regions were not found"
    for name, content in files.items():
        if name.endswith(".png"):
            continue
        text = content.decode()
        for marker in student_kit.FORBIDDEN:
            assert marker not in text, f"{name} holds {marker!r}"
        lines = {line.strip() for line in text.splitlines()}
        if name.endswith(".ipynb"):
            lines = {
                line.strip() for cell in nbformat.reads(text, as_version=4).cells for line in cell.source.splitlines()
            }
        leaked = sorted(lines & secret)
        assert not leaked, f"{name} holds instructor-only lines: {leaked[:3]}"
        if name.endswith(".py"):
            imports = re.findall(r"^\s*(?:from|import)\s+(autograder|tools|solutions)\b.*$", text, re.M)
            assert imports in ([], ["autograder"]), f"{name} imports the course repository: {imports}"


def test_student_kit_refuses_a_leaking_file(files):
    """The builder's audit stops a kit that would hold a hidden-test region."""
    leaking = dict(files, **{"hints.py": files["hints.py"] + b"\n### BEGIN HIDDEN TESTS\n### END HIDDEN TESTS\n"})
    with pytest.raises(student_kit.KitError, match="hints.py"):
        student_kit.audit(leaking)


def test_student_kit_requirements_pin_the_lock(files):
    """requirements.txt pins, at the lock's versions, what the kit needs and leaves the grader's tools out."""
    pinned = [line for line in files["requirements.txt"].decode().splitlines() if line and not line.startswith("#")]
    lock = set((ROOT / "requirements.lock").read_text().splitlines())
    assert pinned and all(line in lock for line in pinned), "a kit requirement is not a line of requirements.lock"
    names = {re.split(r"[=;\s]", line)[0] for line in pinned}
    assert {"numpy", "gymnasium", "pygame-ce", "nbclient", "ipykernel", "jupyterlab", "traitlets"} <= names
    assert not names & {"nbgrader", "pytest", "joblib", "alembic", "sqlalchemy"}, (
        "the kit installs grader-only packages"
    )


def test_student_kit_requirements_follow_the_lock_graph():
    """A package is kept when a kept package needs it, with every marker line, in lock order."""
    lock = (
        "a==1\n    # via project\nb==2 ; sys_platform == 'win32'\n    # via\n    #   a\n    #   x\n"
        "b==3 ; sys_platform != 'win32'\n    # via a\nc==1\n    # via b\nx==9\n    # via project\n"
    )
    assert student_kit.kit_requirements(lock, ("a",)).splitlines()[1:] == [
        "a==1",
        "b==2 ; sys_platform == 'win32'",
        "b==3 ; sys_platform != 'win32'",
        "c==1",
    ]
    with pytest.raises(student_kit.KitError, match="pins no zz"):
        student_kit.kit_requirements(lock, ("zz",))


def test_student_kit_zip_is_the_folder_and_reproducible(files, tmp_path):
    """The zip holds the folder's files under one top folder, and two builds give the same bytes."""
    folder, archive = student_kit.write_kit(files, tmp_path / "one")
    _, again = student_kit.write_kit(files, tmp_path / "two")
    assert archive.read_bytes() == again.read_bytes(), "two builds of the kit differ"
    with zipfile.ZipFile(archive) as zipped:
        names = zipped.namelist()
        assert names == [f"{student_kit.KIT_NAME}/{name}" for name in files]
        assert all(zipped.read(f"{student_kit.KIT_NAME}/{name}") == (folder / name).read_bytes() for name in files)


def setup_cells() -> list[str]:
    """The sources of the release notebook's first code cell (the check) and its Colab cell."""
    cells = nbformat.read(paths.RELEASE_DIR / paths.NOTEBOOK, as_version=4).cells
    code = [cell for cell in cells if cell.cell_type == "code"][:2]
    ids = [cell.metadata["nbgrader"]["grade_id"] for cell in code]
    assert ids == [release.SURROUNDINGS_ID, release.COLAB_ID], f"the notebook's first code cells are {ids}"
    return [cell.source for cell in code]


def test_student_kit_colab_cell_unpacks_the_kit_and_installs_only_what_is_missing(files, tmp_path, monkeypatch, capsys):
    """On Colab (faked: its upload module, a kernel with numpy loaded, pip mocked) with the notebook alone: the
    Colab cell unpacks the uploaded kit zip into the folder (no notebook over the student's), installs only the
    packages missing or too old at the kit's pins, asks for a restart as numpy was loaded, and then reports
    ready from the zip the upload left in the folder; with the course's link set, it needs no upload."""
    import numpy  # noqa: F401 -- a Colab kernel has loaded numpy before the cell upgrades it

    _, archive = student_kit.write_kit(files, tmp_path / "dist")
    session = tmp_path / "content"  # Colab's working folder, where uploads land
    session.mkdir()
    monkeypatch.chdir(session)
    uploads = []

    def upload():  # what google.colab.files.upload does: save the chosen file here and return it
        uploads.append(archive.name)
        (session / archive.name).write_bytes(archive.read_bytes())
        return {archive.name: archive.read_bytes()}

    google, colab, colab_files = (types.ModuleType(name) for name in ("google", "google.colab", "google.colab.files"))
    google.colab, colab.files, colab_files.upload = colab, colab_files, upload
    for module in (google, colab, colab_files, types.ModuleType("IPython")):
        monkeypatch.setitem(sys.modules, module.__name__, module)
    installed = {"numpy": "1.20.0", "matplotlib": "3.8.0"}  # gymnasium missing, numpy too old

    def version(name):
        if name not in installed:
            raise importlib.metadata.PackageNotFoundError(name)
        return installed[name]

    pip = []

    def run(command, **kwargs):
        assert command[:5] == [sys.executable, "-m", "pip", "install", "-q"], command
        pip.append(command[5:])
        installed.update(requirement.split("==") for requirement in command[5:])
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(importlib.metadata, "version", version)
    monkeypatch.setattr(subprocess, "run", run)
    check, colab_cell = setup_cells()
    namespace = {}
    exec(compile(check, "check_surroundings", "exec"), namespace)
    assert "not in the notebook's folder" in capsys.readouterr().out
    exec(compile(colab_cell, "colab_kit", "exec"), namespace)
    out = capsys.readouterr().out
    kit = {name: content for name, content in files.items() if not name.endswith(".ipynb")}
    assert {p.relative_to(session).as_posix() for p in session.rglob("*") if p.is_file()} == {*kit, archive.name}
    assert all((session / name).read_bytes() == content for name, content in kit.items())
    pins = [row for python, row in namespace["PINNED"].items() if sys.version_info[:2] >= python][-1]
    assert pip == [[f"numpy=={pins['numpy']}", f"gymnasium=={pins['gymnasium']}"]], f"pip ran {pip}:\n{out}"
    requirements = files["requirements.txt"].decode()
    assert all(f"\n{requirement}" in requirements for requirement in pip[0]), "installed other pins than the kit's"
    assert f"Unpacked {len(kit)} files from {archive.name} into {session}" in out, out
    assert "Restart the session (Runtime > Restart session)" in out, out

    exec(compile(colab_cell, "colab_kit", "exec"), namespace)  # after the restart: the zip is in the folder
    out = capsys.readouterr().out
    assert len(uploads) == 1 and len(pip) == 1, f"a second upload or install: {uploads}, {pip}"
    assert f"Ready: Python {sys.version.split()[0]}, numpy {pins['numpy']}, gymnasium {pins['gymnasium']}" in out

    linked = tmp_path / "linked"  # the instructor set the course's link: no upload needed
    linked.mkdir()
    monkeypatch.chdir(linked)
    link = f'KIT_URL = "{archive.as_uri()}"'
    exec(compile(colab_cell.replace('KIT_URL = ""', link, 1), "colab_kit", "exec"), namespace)
    assert f"from {archive.as_uri()}" in capsys.readouterr().out and len(uploads) == 1
    assert (linked / "evolution.py").read_bytes() == files["evolution.py"]


def test_student_kit_old_packages_get_the_one_install_command(files, tmp_path):
    """With a numpy older than the lesson supports first on the path, check.py stops before starting a kernel
    with the pip command installing the kit's numpy pin into its own Python, and the notebook's first cell, in a
    kernel, with the %pip form of the same command; neither shows a traceback."""
    folder, _ = student_kit.write_kit(files, tmp_path / "dist")
    stale = tmp_path / "stale" / "numpy-1.20.0.dist-info"  # what an old installation leaves: its metadata
    stale.mkdir(parents=True)
    (stale / "METADATA").write_text("Metadata-Version: 2.1\nName: numpy\nVersion: 1.20.0\n")
    env = {key: value for key, value in os.environ.items() if key not in ("VIRTUAL_ENV", "IPYTHONDIR")}
    env["PYTHONPATH"] = str(stale.parent)
    pinned, oldest = release.course_versions()
    pin = [row for python, row in pinned.items() if sys.version_info[:2] >= python][-1]["numpy"]
    assert f"\nnumpy=={pin} " in files["requirements.txt"].decode(), f"numpy=={pin} is not the kit's pin"
    found = f"numpy 1.20.0 (older than {oldest['numpy']})"

    done = subprocess.run([sys.executable, "check.py"], cwd=folder, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == "", f"check.py went on:\n{done.stdout}{done.stderr}"
    assert done.stderr == (
        f"error: Packages missing or too old for {sys.executable}: {found}: "
        f"run `{sys.executable} -m pip install numpy=={pin}`, then try again.\n"
    )

    nb = nbformat.read(folder / paths.NOTEBOOK, as_version=4)
    nb.cells = [next(cell for cell in nb.cells if cell.cell_type == "code")]
    selfcheck.run_notebook(nb, folder, timeout=60, env=env)
    assert [out.output_type for out in nb.cells[0].outputs] == ["stream"], nb.cells[0].outputs
    assert selfcheck.printed_text(nb.cells[0]).splitlines()[0] == (
        f"Packages missing or too old here: {found}: run `%pip install numpy=={pin}` in a new cell (on Google "
        "Colab the next cell does it), then restart the kernel and run this cell again."
    )


# A correct loop whose pool gets a helper defined in a solution cell: fine under fork, lost under spawn.
HELPER_IN_CELL = (
    "def play(params, seed):\n    return episode(params, seed=seed)\n\n\n",
    "pool.map(partial(play, seed=episode_seed), population)",
)
SPAWN_LIMIT = 90  # seconds for the whole self-check of one part: a kernel start and a refusal, never a hang


def test_student_kit_selfcheck_under_spawn_names_a_helper_from_a_cell(files, tmp_path):
    """With spawn forced (as on macOS and Windows), a helper from a solution cell sent to the pool fails the
    parallel part within seconds, and check.py names __main__, spawn and the fix rather than timing out."""
    folder, _ = student_kit.write_kit(files, tmp_path / "dist")
    source = demo.reference_source()
    parallel_map = "pool.map(partial(episode, seed=episode_seed), population)"
    assert parallel_map in source and "def evolve_parallel(" in source
    source = source.replace(parallel_map, HELPER_IN_CELL[1]).replace(
        "def evolve_parallel(", HELPER_IN_CELL[0] + "def evolve_parallel(", 1
    )
    nbformat.write(demo.with_solution(source), folder / "neuroevolution.ipynb")
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        'import multiprocessing\nmultiprocessing.set_start_method("spawn", force=True)\n'
    )
    env = {key: value for key, value in os.environ.items() if key not in ("VIRTUAL_ENV", "IPYTHONDIR")}
    env.update(PYTHONPATH=str(site), NEUROEVO_AGENTS_DIR=str(tmp_path / "agents"))
    start = time.monotonic()
    # A session of its own, so that a hang costs the kernel and its workers too, not only check.py.
    with subprocess.Popen(
        [sys.executable, "check.py", "--part", "parallel"],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    ) as checking:
        try:
            out, _ = checking.communicate(timeout=SPAWN_LIMIT)
        except subprocess.TimeoutExpired:
            os.killpg(checking.pid, signal.SIGKILL)
            out, _ = checking.communicate()
            pytest.fail(f"check.py under spawn ran past {SPAWN_LIMIT} s (a hang?):\n{out}")
    elapsed = time.monotonic() - start
    assert checking.returncode == 1, f"check.py should fail the parallel part:\n{out}"
    line = next((line for line in out.splitlines() if line.startswith("Part parallel:")), "")
    for words in ("0/20", "play", "__main__", "'spawn'", "partial(episode, seed=...)", ".py file beside the notebook"):
        assert words in line, f"the parallel line lacks {words!r}:\n{out}"
    assert "Total: 0/20 (parts checked: parallel)" in out, out
    assert "timed out" not in out and "Traceback" not in out, out
    assert elapsed < SPAWN_LIMIT


def build_environment(kit: Path) -> Path:
    """A fresh virtual environment with the kit's requirements (uv where present, else pip); its python."""
    venv = kit / ".venv"
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    if shutil.which("uv"):
        commands = [
            ["uv", "venv", "-q", "--python", sys.executable, str(venv)],
            ["uv", "pip", "install", "-q", "--python", str(python), "-r", "requirements.txt"],
        ]
    else:
        commands = [
            [sys.executable, "-m", "venv", str(venv)],
            [str(python), "-m", "pip", "install", "-q", "-r", "requirements.txt"],
        ]
    for command in commands:
        result = subprocess.run(command, cwd=kit, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, f"{' '.join(command[:3])} failed:\n{result.stderr[-2000:]}"
    return python


def check(python: Path, kit: Path, agents: Path) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV", "IPYTHONDIR")}
    env["NEUROEVO_AGENTS_DIR"] = str(agents)
    return subprocess.run([str(python), "check.py"], cwd=kit, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
@pytest.mark.timed  # the self-check judges the speedup on this machine
def test_student_kit_selfcheck_from_the_unzipped_kit(tmp_path):
    """Unzipped, with its own requirements installed fresh: 0 on the stubs, 100 on a correct notebook."""
    assert student_kit.main(["--dist", str(tmp_path / "dist")]) == 0
    with zipfile.ZipFile(tmp_path / "dist" / f"{student_kit.KIT_NAME}.zip") as zipped:
        zipped.extractall(tmp_path / "unzipped")
    kit = tmp_path / "unzipped" / student_kit.KIT_NAME
    python = build_environment(kit)

    stub = check(python, kit, tmp_path / "agents")
    assert stub.returncode == 1, f"the untouched kit should fail the check:\n{stub.stdout}{stub.stderr}"
    assert "Total: 0/100" in stub.stdout and "Traceback" not in stub.stdout + stub.stderr
    for function in ("evolve_serial", "evolve_parallel"):
        assert f"{function} still raises NotImplementedError" in stub.stdout

    nbformat.write(demo.with_solution(demo.reference_source()), kit / "neuroevolution.ipynb")
    solved = check(python, kit, tmp_path / "agents")
    assert solved.returncode == 0, f"the correct notebook failed the check:\n{solved.stdout}{solved.stderr}"
    if "not judged here" in solved.stdout:  # a busy machine: never full marks, and the rest must be full
        assert "Total: 85/85 judged on this machine" in solved.stdout, solved.stdout
    else:
        assert "Total: 100/100" in solved.stdout, solved.stdout
