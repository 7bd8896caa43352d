"""render.py: a GIF on a machine without a display, and one clear line for every user error."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import evolution as ev  # the canonical copy (pytest's pythonpath holds solutions/neuroevolution)
import numpy as np
import pytest
from PIL import Image

import render
from autograder.paths import ROOT
from autograder.paths import SOURCE_DIR as HELPER_DIR


@pytest.fixture
def agents(tmp_path, monkeypatch) -> Path:
    """A private agents folder, as NEUROEVO_AGENTS_DIR."""
    folder = tmp_path / "agents"
    monkeypatch.setenv("NEUROEVO_AGENTS_DIR", str(folder))
    return folder


def some_agent(seed: int) -> dict:
    return ev.initialize_parameters(ev.I_SIZE, ev.H_SIZE, ev.O_SIZE, rng=np.random.default_rng(seed))


def run_headless(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run render.py as a user would, on a Linux machine without a display."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    command = [sys.executable, str(ROOT / "render.py"), "--helper-dir", str(HELPER_DIR), *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the headless fallback is defined for Linux")
def test_render_writes_gif_when_headless(agents, tmp_path):
    """Without a display, a saved agent becomes an animated GIF whose path and returns are printed."""
    params = some_agent(1)
    ev.save_params(params, 4)
    result = run_headless(["--agent_id", "4", "--agents-dir", str(agents), "--seed", "3", "--episodes", "2"], tmp_path)
    assert result.returncode == 0, f"render.py failed:\n{result.stderr}"
    returns = [float(r) for r in re.findall(r"return (-?\d+\.\d+)", result.stdout)]
    assert returns == [round(ev.episode(params, seed=s), 2) for s in (3, 4)], "printed returns differ from episode()"
    gif = tmp_path / "agent-4.gif"
    assert f"wrote {gif}" in result.stdout, f"the GIF's path was not printed:\n{result.stdout}"
    with Image.open(gif) as image:
        assert image.format == "GIF" and image.n_frames > 10, "the GIF should hold an animation"
        assert image.size == (300, 200), "frames should be downscaled by --scale 0.5"
    assert gif.stat().st_size < 2_000_000, "the GIF should stay small"


def test_render_missing_agent_lists_saved_ids(agents, tmp_path):
    """Asking for an agent nobody saved prints one line naming the saved ids, exit status 1, no traceback."""
    for agent_id in (9, 2):
        ev.save_params(some_agent(agent_id), agent_id)
    result = run_headless(["--agent_id", "5", "--agents-dir", str(agents)], tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "saved agents: 2, 9" in lines[0], f"unclear error:\n{result.stderr}"
    assert not list(tmp_path.glob("*.gif")), "no GIF may be written for a missing agent"


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--agent_id", "1", "--episodes", "0"],
        ["--agent_id", "1", "--seed", "-3"],
        ["--agent_id", "1", "--scale", "2"],
        ["--agent_id", "1", "--window", "--out", "car.gif"],
        ["--agent_id", "1", "--no-such-flag"],
    ],
    ids=["no-agent-id", "zero-episodes", "negative-seed", "scale-too-big", "window-and-out", "unknown-flag"],
)
def test_render_bad_flags_exit_2(argv, capsys):
    """A bad command line exits with status 2 and a usage message naming the problem."""
    with pytest.raises(SystemExit) as stop:
        render.main(argv)
    assert stop.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_render_window_and_out_are_one_choice(capsys):
    """--window and --out form one mutually exclusive group: argparse names the clash in its usage error."""
    with pytest.raises(SystemExit):
        render.main(["--agent_id", "1", "--out", "car.gif", "--window"])
    err = capsys.readouterr().err
    assert "argument --window: not allowed with argument --out" in err, err
    assert "[--out OUT | --window]" in render.build_parser().format_usage()


def test_render_window_without_display_says_what_to_do(monkeypatch, capsys):
    """--window on a machine without a display fails with one line suggesting the GIF."""
    monkeypatch.setattr(render.sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert render.main(["--agent_id", "1", "--window"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no display" in err[0] and "GIF" in err[0]


def test_render_missing_pygame_says_what_to_do(monkeypatch, capsys, tmp_path):
    """Without pygame, one line says how to install it."""
    for name in ("SDL_VIDEODRIVER", "PYGAME_HIDE_SUPPORT_PROMPT"):
        monkeypatch.setenv(name, os.environ.get(name, "dummy" if name == "SDL_VIDEODRIVER" else "1"))
    real_find_spec = render.importlib.util.find_spec
    monkeypatch.setattr(
        render.importlib.util, "find_spec", lambda name, *a: None if name == "pygame" else real_find_spec(name, *a)
    )
    assert render.main(["--agent_id", "1", "--out", str(tmp_path / "car.gif")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        len(err) == 1
        and "pygame is not installed" in err[0]
        and "make install" in err[0]
        and "pip install -r requirements.txt" in err[0]
    ), f"the message should say how to install, in the kit and the repo: {err}"


@pytest.fixture
def helper_dirs(tmp_path, monkeypatch) -> tuple[Path, Path]:
    """Two empty stand-in helper folders as render.HELPER_DIRS (release first), no NEUROEVO_AGENTS_DIR."""
    release, source = tmp_path / "assignment", tmp_path / "solutions"
    for folder in (release, source):
        folder.mkdir()
    monkeypatch.setattr(render, "HELPER_DIRS", (release, source))
    monkeypatch.setattr(render, "import_evolution", lambda helper_dir: ev)  # no evolution.py copies needed
    monkeypatch.delenv("NEUROEVO_AGENTS_DIR", raising=False)
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")  # draw off-screen; restored after the test
    monkeypatch.setenv("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    return release, source


def save_in(folder: Path, params: dict, agent_id) -> Path:
    """Save an agent into ``folder`` as the notebook would with NEUROEVO_AGENTS_DIR pointing there."""
    with render.agents_dir_set_to(folder):
        return ev.save_params(params, agent_id)


def test_render_agent_folders_follow_the_documented_order(helper_dirs, tmp_path, monkeypatch):
    """--agents-dir alone, else $NEUROEVO_AGENTS_DIR alone, else agents/ beside --helper-dir and each helper folder."""
    release, source = helper_dirs
    mine = tmp_path / "mine"
    assert render.agent_folders(None, None) == [release / "agents", source / "agents"]
    assert render.agent_folders(None, mine) == [mine / "agents", release / "agents", source / "agents"]
    assert render.agent_folders(None, source) == [source / "agents", release / "agents"], (
        "a helper folder given twice should be searched once"
    )
    assert render.agent_folders(mine, source) == [mine], "--agents-dir should be the only folder searched"
    monkeypatch.setenv("NEUROEVO_AGENTS_DIR", str(tmp_path / "env"))
    assert render.agent_folders(None, None) == [tmp_path / "env"]
    assert render.agent_folders(mine, None) == [mine], "--agents-dir should win over NEUROEVO_AGENTS_DIR"


def test_render_finds_an_agent_saved_beside_the_instructor_copy(helper_dirs):
    """An agent saved from the solutions notebook is found although the release folder is searched first."""
    release, source = helper_dirs
    save_in(release / "agents", some_agent(1), 2)
    params = some_agent(3)
    save_in(source / "agents", params, 3)
    path, loaded = render.find_agent(ev, 3, render.agent_folders(None, None))
    assert path == source / "agents" / "agent-3.npz"
    assert all(np.array_equal(loaded[key], params[key]) for key in ev.PARAM_KEYS), "the wrong agent was loaded"
    assert "NEUROEVO_AGENTS_DIR" not in os.environ, "find_agent left NEUROEVO_AGENTS_DIR set"


def test_render_first_folder_holding_the_id_wins(helper_dirs):
    """When both folders hold the id, the release's agents/ folder is the one played."""
    release, source = helper_dirs
    first, second = some_agent(5), some_agent(6)
    save_in(release / "agents", first, 7)
    save_in(source / "agents", second, 7)
    path, loaded = render.find_agent(ev, 7, render.agent_folders(None, None))
    assert path == release / "agents" / "agent-7.npz"
    assert np.array_equal(loaded["w1"], first["w1"]), "the agent of the second folder was played"


def test_render_missing_everywhere_lists_folders_and_saved_ids(helper_dirs, tmp_path, capsys):
    """No folder holds the id: one line names every folder searched and the ids each one holds."""
    release, source = helper_dirs
    for agent_id in (9, 2):
        save_in(source / "agents", some_agent(agent_id), agent_id)
    assert render.main(["--agent_id", "4", "--out", str(tmp_path / "none.gif")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, f"expected one line, got {err}"
    assert (
        f"{release / 'agents'} (no such folder)" in err[0] and f"{source / 'agents'} (saved agents: 2, 9)" in err[0]
    ), f"the error should list both folders and their ids: {err[0]}"
    assert "save_params(params, 4)" in err[0]


def test_render_bad_or_damaged_agent_stops_with_the_helpers_message(helper_dirs):
    """An id save_params would refuse, or a damaged file under the id, is reported, not skipped over."""
    release, source = helper_dirs
    with pytest.raises(render.RenderError, match="agent_id must be"):
        render.find_agent(ev, "../x", render.agent_folders(None, None))
    (release / "agents").mkdir()
    (release / "agents" / "agent-8.npz").write_bytes(b"not a zip file")
    save_in(source / "agents", some_agent(8), 8)
    with pytest.raises(render.RenderError, match="is not a saved agent"):
        render.find_agent(ev, 8, render.agent_folders(None, None))


def test_render_plays_the_file_it_found_and_says_which(helper_dirs, tmp_path, capsys):
    """render.py without --agents-dir plays the agent beside the second helper folder and prints its path."""
    release, source = helper_dirs
    save_in(source / "agents", some_agent(4), 5)
    gif = tmp_path / "five.gif"
    assert render.main(["--agent_id", "5", "--out", str(gif), "--seed", "1", "--frame-skip", "40"]) == 0
    out = capsys.readouterr().out
    assert f"playing {source / 'agents' / 'agent-5.npz'}" in out, f"the played file was not named:\n{out}"
    assert gif.is_file(), "no GIF was written"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the headless fallback is defined for Linux")
def test_render_in_the_kit_layout_finds_agents_beside_it(tmp_path):
    """In a flat kit folder, render.py needs no flag: it plays agents/ beside it and names only that folder."""
    kit = tmp_path / "kit"
    kit.mkdir()
    for path in (ROOT / "render.py", HELPER_DIR / "evolution.py"):
        (kit / path.name).write_bytes(path.read_bytes())
    save_in(kit / "agents", some_agent(2), 3)
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "NEUROEVO_AGENTS_DIR")}
    command = [sys.executable, "render.py", "--seed", "1", "--frame-skip", "40"]
    played = subprocess.run(
        [*command, "--agent_id", "3"], cwd=kit, env=env, capture_output=True, text=True, timeout=120
    )
    assert played.returncode == 0 and f"playing {kit / 'agents' / 'agent-3.npz'}" in played.stdout, played.stderr
    missing = subprocess.run(
        [*command, "--agent_id", "4"], cwd=kit, env=env, capture_output=True, text=True, timeout=120
    )
    err = missing.stderr.strip().splitlines()
    assert missing.returncode == 1 and len(err) == 1 and "saved agents: 3" in err[0], missing.stderr
    assert "assignment" not in err[0] and "solutions" not in err[0], (
        f"the kit's message names repository folders: {err[0]}"
    )
