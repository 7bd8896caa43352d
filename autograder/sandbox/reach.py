"""What a run can reach: run inside the sandbox like student code, before any student is graded.

Standard library only; the grader passes this file's text to ``python -c`` and the paths on
standard input as JSON: ``{"read": [...], "write": [...]}``. It prints one JSON object:

* ``uids``, ``gids``, ``groups``: its ids; ``cap_eff``, ``cap_prm``: its capabilities (hex);
  ``no_new_privs``: from ``/proc/self/status``;
* ``readable``: every path of ``read`` it could open or list (it must reach none);
* ``writable``: paths at or below ``write`` it may change (a bounded walk; it must find none);
* ``own_folder``: whether it can write in its own working folder (it must).
"""

import json
import os
import sys

WALK_LIMIT = 200_000


def _readable(path):
    try:
        if os.path.isdir(path):
            os.listdir(path)
        else:
            with open(path, "rb") as fh:
                fh.read(1)
        return True
    except OSError:
        return False


def _writable(root):
    found = []
    seen = 0
    if os.access(root, os.W_OK):
        found.append(root)
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(folder, d))]
        for name in dirs + files:
            seen += 1
            path = os.path.join(folder, name)
            if not os.path.islink(path) and os.access(path, os.W_OK):
                found.append(path)
        if seen > WALK_LIMIT or len(found) > 20:
            break
    return found


def main():
    job = json.loads(sys.stdin.read())
    status = {}
    try:
        with open("/proc/self/status") as fh:
            status = dict(line.rstrip("\n").split(":\t", 1) for line in fh if ":\t" in line)
    except OSError:
        pass
    try:
        with open("probe", "w") as fh:
            fh.write("ok")
        own = True
    except OSError:
        own = False
    report = {
        "uids": list(os.getresuid()),
        "gids": list(os.getresgid()),
        "groups": os.getgroups(),
        "cap_eff": status.get("CapEff", "").strip(),
        "cap_prm": status.get("CapPrm", "").strip(),
        "no_new_privs": status.get("NoNewPrivs", "").strip(),
        "readable": [p for p in job["read"] if _readable(p)],
        "writable": [w for root in job["write"] if os.path.lexists(root) for w in _writable(root)],
        "own_folder": own,
    }
    print(json.dumps(report))


main()
