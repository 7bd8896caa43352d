#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder's image (Ubuntu base image).
# It installs the grader's locked environment into /autograder/source/.venv.
set -euo pipefail
SOURCE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# bubblewrap isolates each run of student code; if the container cannot run it, the grader falls
# back to plain processes and the container itself is the isolation (see the README).
apt-get install -y -q --no-install-recommends python3 python3-venv python3-pip bubblewrap

python3 -m venv "$SOURCE/.venv"
"$SOURCE/.venv/bin/python" -m pip install -q --upgrade pip
"$SOURCE/.venv/bin/python" -m pip install -q -r "$SOURCE/requirements.lock"
# Runs of student code must not be able to change the environment; the grader checks this.
chmod -R go-w "$SOURCE/.venv"
# The reference, hidden tests and grader code private to root from the start, not from the first grade.
(cd "$SOURCE" && .venv/bin/python -m autograder.gradescope_run --seal)
# Fail the image build now, not at the first submission.
cd "$SOURCE" && .venv/bin/python -c "import autograder.batch, gymnasium, nbgrader, matplotlib" \
    && echo "neuroevolution autograder installed in $SOURCE/.venv"
