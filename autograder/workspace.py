"""The sandbox folder of one submission and the runs made in it.

The folder holds only the generated student module (``submission.py``), the trusted helper
with its recording shim (``evolution.py``) and the harness package. Each run gets a job
file, clean ``out/`` and ``record/`` folders, and is read back strictly afterwards.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from autograder import paths, validate
from autograder.config import SANDBOX
from autograder.sandbox import Limits, Outcome, run

MAX_RECORD_LINES = 50_000


@dataclass
class Episode:
    """One recorded episode: which process played it, when, from which start state, with what."""

    pid: int
    t: int
    seed: int | None
    params: dict
    ret: float


@dataclass
class RunResult:
    """A sandboxed run read back: its outcome, per-call results and the episodes it recorded."""

    outcome: Outcome
    import_info: dict | None = None
    phases: dict[str, dict] = field(default_factory=dict)
    started: list[str] = field(default_factory=list)
    episodes: list[Episode] = field(default_factory=list)
    garbled: list[str] = field(default_factory=list)
    """Why result files or record lines were refused (bad JSON, too big, wrong form)."""


def recording_helper_source() -> str:
    """The trusted evolution.py followed by the recording shim."""
    helper = paths.helper_module().read_text(encoding="utf-8")
    shim = (paths.HARNESS_DIR / "recording.py").read_text(encoding="utf-8")
    return helper.rstrip("\n") + "\n\n\n" + shim


def prepare(workdir: Path, module_source: str) -> None:
    """Fill ``workdir`` with the submission module, the recording helper and the harness."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "submission.py").write_text(module_source, encoding="utf-8")
    (workdir / "evolution.py").write_text(recording_helper_source(), encoding="utf-8")
    harness = workdir / "harness"
    harness.mkdir(exist_ok=True)
    for name in ("__init__.py", "__main__.py"):
        shutil.copyfile(paths.HARNESS_DIR / name, harness / name)


def blas_settings() -> dict[str, str]:
    """The grader's OpenBLAS settings (kernel choice, cache sizes), thread counts aside.

    OpenBLAS picks its matrix kernels from these, and kernels round differently: the
    sandbox must use the grader's, or the grader's replay of an episode can differ in the
    last bit from the submission's.
    """
    return {key: value for key, value in os.environ.items()
            if key.startswith("OPENBLAS_") and key != "OPENBLAS_NUM_THREADS"}


def run_job(workdir: Path, calls: list[dict], *, wall_seconds: float, record: bool = True,
            start_method: str | None = None) -> RunResult:
    """Run the harness on ``calls`` in ``workdir`` and read back what it wrote.

    ``start_method`` makes it multiprocessing's default in the run (None: the platform's).
    """
    for name in ("out", "record"):
        shutil.rmtree(workdir / name, ignore_errors=True)
        (workdir / name).mkdir()
    (workdir / "job.json").write_text(json.dumps({"calls": calls, "start_method": start_method}), encoding="utf-8")
    limits = Limits(wall_seconds=wall_seconds, memory_bytes=SANDBOX.memory_bytes,
                    max_processes=SANDBOX.max_processes, output_bytes=SANDBOX.output_bytes)
    env = {"NEUROEVO_RECORD": "record" if record else "", "NEUROEVO_AGENTS_DIR": "agents",
           "MPLBACKEND": "Agg", "PYTHONDONTWRITEBYTECODE": "1", **blas_settings()}
    outcome = run([sys.executable, "-m", "harness", "job.json"], workdir=workdir, limits=limits, env=env)
    result = RunResult(outcome=outcome)
    _read_outputs(workdir / "out", calls, result)
    if record:
        _read_records(workdir / "record", result)
    return result


def _read_outputs(out: Path, calls: list[dict], result: RunResult) -> None:
    def load(path: Path):
        try:
            data = validate.read_json(path, SANDBOX.result_bytes)
        except (OSError, ValueError) as exc:
            result.garbled.append(f"{path.name}: {exc}")
            return None
        if not isinstance(data, dict):
            result.garbled.append(f"{path.name}: not a JSON object")
            return None
        return data

    if (out / "import.json").is_file():
        result.import_info = load(out / "import.json")
    for call in calls:
        phase = call["phase"]
        if (out / f"{phase}.started").is_file():
            result.started.append(phase)
        if (out / f"{phase}.json").is_file():
            data = load(out / f"{phase}.json")
            if data is not None:
                result.phases[phase] = data


def _read_records(folder: Path, result: RunResult) -> None:
    budget = SANDBOX.result_bytes * 4
    lines = 0
    for path in sorted(folder.glob("*.jsonl")):
        size = path.stat().st_size
        if size > budget:
            result.garbled.append(f"episode record {path.name} is too large ({size} bytes)")
            continue
        budget -= size
        for text in path.read_text(encoding="utf-8", errors="replace").splitlines():
            lines += 1
            if lines > MAX_RECORD_LINES:
                result.garbled.append("too many recorded episodes")
                return
            try:
                result.episodes.append(_episode(json.loads(text, parse_constant=validate._no_constant)))
            except (ValueError, TypeError) as exc:
                result.garbled.append(f"episode record line refused: {exc}")
    result.episodes.sort(key=lambda e: (e.t, e.pid))


def _episode(line) -> Episode:
    if not isinstance(line, dict):
        raise validate.Invalid("not a JSON object")
    seed = line.get("seed")
    if seed is not None:
        seed = validate.integer(seed, "seed")
    return Episode(pid=validate.integer(line.get("pid"), "pid"), t=validate.integer(line.get("t"), "t"), seed=seed,
                   params=validate.params(line.get("params"), "recorded params"),
                   ret=validate.finite(line.get("ret"), "recorded return"))


def in_window(episodes: list[Episode], phase: dict) -> list[Episode]:
    """The episodes recorded between a call's start and end times."""
    try:
        t0, t1 = validate.integer(phase.get("t0"), "t0"), validate.integer(phase.get("t1"), "t1")
    except validate.Invalid:
        return []
    return [e for e in episodes if t0 <= e.t <= t1]


def median(values: list[float]) -> float:
    """The median of a non-empty list (NaN for an empty one)."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
