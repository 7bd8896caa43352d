"""Build the Gradescope autograder bundle: ``python -m tools.gradescope`` (``make gradescope``).

Writes ``dist/gradescope-autograder.zip``: ``setup.sh`` and ``run_autograder`` at its top level
(Gradescope's layout), with the grader, the trusted helper and release notebook, the reference
solution and the locked requirements beside them. Upload it as a "Programming Assignment"
autograder; students submit ``neuroevolution.ipynb``.

Exit status: 0 when the bundle is written; 1 when a file it needs is missing (the message says
which; `make assignment` makes the release).
"""

from __future__ import annotations

import argparse
import fnmatch
import sys
import zipfile
from pathlib import Path

from autograder.paths import ROOT

TEMPLATES = Path(__file__).resolve().parent / "gradescope"
# What the bundle carries besides the two scripts (the reference is needed to time the speedup).
# The grader reads the trusted evolution.py and hints.py (its student messages) beside the notebooks.
INCLUDE = (
    "autograder/**/*",
    *(
        f"{folder}/neuroevolution/{name}"
        for folder in ("assignment", "solutions")
        for name in ("neuroevolution.ipynb", "evolution.py", "hints.py")
    ),
    "requirements.lock",
    "pyproject.toml",
    "nbgrader_config.py",  # the course's late policy (Gradescope's own due date is used when it sets none)
)
EXCLUDE = ("*/__pycache__/*", "*.pyc", "*/.*")
SCRIPTS = ("setup.sh", "run_autograder")
DEFAULT_OUT = ROOT / "dist" / "gradescope-autograder.zip"


def bundle_files() -> dict[str, Path]:
    """Archive name -> file, for everything but the scripts."""
    files = {}
    for pattern in INCLUDE:
        matches = sorted(ROOT.glob(pattern)) if "*" in pattern else [ROOT / pattern]
        if "*" not in pattern and not matches[0].is_file():
            raise FileNotFoundError(f"{pattern} is missing: run `make assignment` or restore it from version control")
        for path in matches:
            name = path.relative_to(ROOT).as_posix()
            if path.is_file() and not path.is_symlink() and not any(fnmatch.fnmatch("/" + name, p) for p in EXCLUDE):
                files[name] = path
    return files


def build(out: Path) -> list[str]:
    """Write the zip (through a temporary file); returns the archive names."""
    files = bundle_files()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.partial")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for script in SCRIPTS:
            info = zipfile.ZipInfo(script, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = 0o100755 << 16  # executable, as Gradescope runs them directly
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, (TEMPLATES / script).read_bytes())
        for name, path in sorted(files.items()):
            zf.write(path, name)
    tmp.replace(out)
    return [*SCRIPTS, *sorted(files)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.gradescope", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"zip to write (default: {DEFAULT_OUT.relative_to(ROOT)})"
    )
    args = parser.parse_args(argv)
    try:
        names = build(args.out)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    size = args.out.stat().st_size / 2**20
    print(f"wrote {args.out} ({len(names)} files, {size:.1f} MB): upload it as the assignment's autograder")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
