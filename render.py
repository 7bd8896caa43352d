"""Watch a saved agent drive MountainCarContinuous: ``python render.py --agent_id N``.

The agent is the one saved with ``save_params(params, N)`` in the notebook. It is looked for in
``--agents-dir`` if given, else in ``$NEUROEVO_AGENTS_DIR`` if set, else in the ``agents/`` folder
beside ``evolution.py``: in the student kit, the folder of this script; in the course repository,
each copy of the helper (the student release, then the instructor source), so an agent saved from
either notebook is found; the first folder holding that id wins. Where a display
exists it plays in a window; on a machine without one (Linux with neither ``DISPLAY`` nor
``WAYLAND_DISPLAY`` set) it writes an animated GIF instead and prints its path. ``--out
car.gif`` asks for a GIF anywhere. Each episode's return is printed.

Exit status: 0 on success, 1 when the agent, pygame, pillow or a window is not available,
2 for a bad command line.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent
# Where evolution.py is looked for when --helper-dir is not given, first match wins: this script's
# own folder in the student kit (one flat folder); in the course repository the student release,
# then the instructor source. Saved agents are looked for in the agents/ folder beside each.
if (ROOT / "evolution.py").is_file():
    HELPER_DIRS: tuple[Path, ...] = (ROOT,)
else:
    HELPER_DIRS = (ROOT / "assignment" / "neuroevolution", ROOT / "solutions" / "neuroevolution")
INSTALL_HINT = (
    "install the course's requirements (`pip install -r requirements.txt` in the student kit, "
    "`make install` in the course repository)"
)
GIF_FPS = 30  # the environment's own render speed
AGENTS_ENV = "NEUROEVO_AGENTS_DIR"  # evolution.py saves agents in the folder this names, when set


class RenderError(Exception):
    """A problem the user can fix; the message says how."""


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def scale_factor(text: str) -> float:
    """argparse type: a number in (0, 1]."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text!r}")
    return value


def seed_value(text: str) -> int:
    """argparse type: a whole number >= 0."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python render.py",
        description="Play an agent saved with save_params(params, N): in a window where a display exists, "
        "otherwise as an animated GIF.",
    )
    parser.add_argument(
        "--agent_id",
        "--agent-id",
        dest="agent_id",
        required=True,
        help="the id the agent was saved under, as in save_params(params, N)",
    )
    parser.add_argument("--episodes", type=positive_int, default=1, help="episodes to play (default: 1)")
    parser.add_argument(
        "--seed",
        type=seed_value,
        default=None,
        help="start-state seed of the first episode; the next ones use seed+1, seed+2, ... "
        "(default: a random seed, printed so the run can be repeated)",
    )
    # A window or a GIF, never both: argparse rejects the pair with a usage line.
    output = parser.add_mutually_exclusive_group()
    output.add_argument(
        "--out",
        type=Path,
        default=None,
        help="write an animated GIF to this path instead of opening a window "
        "(default without a display: agent-<id>.gif in the current folder)",
    )
    output.add_argument(
        "--window",
        action="store_true",
        help="insist on a window; fail instead of falling back to a GIF when there is no display",
    )
    parser.add_argument(
        "--agents-dir",
        type=Path,
        default=None,
        help="folder holding the saved agents (default: $NEUROEVO_AGENTS_DIR, else the first "
        "agents/ folder holding the id, beside --helper-dir or the default helper folders)",
    )
    parser.add_argument(
        "--helper-dir",
        type=Path,
        default=None,
        help="folder holding evolution.py (default: the first of "
        f"{', '.join(str(folder) for folder in HELPER_DIRS)} that has it)",
    )
    parser.add_argument(
        "--frame-skip",
        type=positive_int,
        default=3,
        help="keep one frame in this many in the GIF, to keep it small (default: 3)",
    )
    parser.add_argument(
        "--scale", type=scale_factor, default=0.5, help="shrink GIF frames by this factor, in (0, 1] (default: 0.5)"
    )
    return parser


def has_display() -> bool:
    """False on Linux without an X or Wayland display; other systems are assumed to have a screen."""
    if not sys.platform.startswith("linux"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def import_evolution(helper_dir: Path | None):
    """Import evolution.py from ``helper_dir`` or the first of ``HELPER_DIRS`` that has it."""
    candidates = [helper_dir] if helper_dir else list(HELPER_DIRS)
    for folder in candidates:
        if (folder / "evolution.py").is_file():
            sys.path.insert(0, str(folder.resolve()))
            try:
                return importlib.import_module("evolution")
            except ImportError as exc:
                raise RenderError(f"cannot import {folder / 'evolution.py'} ({exc}): {INSTALL_HINT}") from None
    where = ", ".join(str(folder) for folder in candidates)
    raise RenderError(f"no evolution.py in {where}: pass --helper-dir FOLDER, the folder holding your notebook")


def agent_folders(agents_dir: Path | None, helper_dir: Path | None) -> list[Path]:
    """The folders to look for a saved agent in, in order: the one named, else every agents/ folder."""
    if agents_dir:
        return [agents_dir.expanduser()]
    if os.environ.get(AGENTS_ENV):
        return [Path(os.environ[AGENTS_ENV]).expanduser()]
    folders = []
    for helper in ([helper_dir] if helper_dir else []) + list(HELPER_DIRS):
        folder = helper / "agents"
        if folder.resolve() not in [known.resolve() for known in folders]:
            folders.append(folder)
    return folders


@contextmanager
def agents_dir_set_to(folder: Path):
    """Point evolution.py's save/load functions at ``folder`` for the duration of the block."""
    previous = os.environ.get(AGENTS_ENV)
    os.environ[AGENTS_ENV] = str(folder)
    try:
        yield
    finally:
        if previous is None:
            del os.environ[AGENTS_ENV]
        else:
            os.environ[AGENTS_ENV] = previous


def find_agent(ev, agent_id, folders: list[Path]) -> tuple[Path, dict]:
    """(file, params) of agent ``agent_id`` from the first of ``folders`` that holds it."""
    saved = []
    for folder in folders:
        with agents_dir_set_to(folder):
            try:
                params = ev.load_params(agent_id)
            except FileNotFoundError:
                ids = ev.saved_agent_ids()
                state = "no such folder" if not folder.is_dir() else f"saved agents: {', '.join(ids) or 'none'}"
                saved.append(f"{folder} ({state})")
                continue
            except ValueError as exc:  # a bad id, or a damaged file under that id
                raise RenderError(str(exc)) from None
        return folder / f"agent-{agent_id}.npz", params
    raise RenderError(
        f"no agent {str(agent_id)!r} in {'; '.join(saved)}: save one in the notebook with "
        f"save_params(params, {agent_id!r}), or pass --agents-dir FOLDER"
    )


def require(module: str, why: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise RenderError(f"{module} is not installed but is needed {why}: {INSTALL_HINT}")


def play(ev, env, params, seed: int, frames: list | None, frame_skip: int) -> float:
    """One episode from ``seed``; appends every ``frame_skip``-th frame to ``frames`` if given."""
    observation, _ = env.reset(seed=seed)
    total = 0.0
    for step in range(ev.MAX_STEPS):
        if frames is not None and step % frame_skip == 0:
            frames.append(env.render())
        observation, reward, terminated, truncated, _ = env.step(ev.forward(observation, params))
        total += float(reward)
        if terminated or truncated:
            break
    if frames is not None:
        frames.append(env.render())  # the final position: at the flag, or where time ran out
    return total


def write_gif(frames: list, path: Path, frame_skip: int, scale: float) -> None:
    """Save ``frames`` (RGB arrays) as a looping GIF that plays at the environment's speed."""
    from PIL import Image

    height, width = frames[0].shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    images = [Image.fromarray(frame).resize(size, Image.Resampling.BILINEAR) for frame in frames]
    palette = images[0].quantize(colors=64)  # one shared palette: smaller file, no flicker
    images = [image.quantize(palette=palette) for image in images]
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(
        path,
        save_all=True,
        append_images=images[1:],
        loop=0,
        duration=round(1000 * frame_skip / GIF_FPS),
        optimize=True,
    )


def run(args) -> None:
    window = not args.out and has_display()
    if args.window and not has_display():
        raise RenderError(
            "no display found (neither DISPLAY nor WAYLAND_DISPLAY is set): "
            "drop --window to get a GIF, or run this on a machine with a screen"
        )
    out = None if window else (args.out or Path(f"agent-{args.agent_id}.gif"))
    if not window:
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # draw off-screen, no window needed
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    require("pygame", "to draw the car")
    if out:
        require("PIL", "to write the GIF")
    import pygame

    ev = import_evolution(args.helper_dir)
    agent_id = int(args.agent_id) if args.agent_id.isdigit() else args.agent_id  # as save_params got it
    path, params = find_agent(ev, agent_id, agent_folders(args.agents_dir, args.helper_dir))
    print(f"playing {path}", flush=True)

    first_seed = args.seed
    if first_seed is None:
        import numpy as np

        first_seed = int(np.random.default_rng().integers(2**31 - 1))
    frames = [] if out else None
    env = ev.make_env(render_mode="rgb_array" if out else "human")
    try:
        for number in range(args.episodes):
            seed = first_seed + number
            total = play(ev, env, params, seed, frames, args.frame_skip)
            print(f"agent {args.agent_id}, episode {number + 1} (seed {seed}): return {total:.2f}", flush=True)
    except pygame.error as exc:  # e.g. DISPLAY names a screen that cannot be opened
        raise RenderError(f"could not draw the car ({exc}): use --out car.gif to write a GIF instead") from None
    finally:
        env.close()
    if out:
        write_gif(frames, out, args.frame_skip, args.scale)
        print(f"wrote {out.resolve()} ({len(frames)} frames)")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        run(args)
    except RenderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
