# Parallel neuroevolution with multiprocessing: instructor and student entry points.
# Every target bootstraps the environment it needs; override any UPPER_CASE variable,
# e.g. `make grade STUDENT=alice` or `make render AGENT_ID=3`.

PYTHON     ?= python3
VENV       ?= .venv
SUBMITTED  ?= submitted
OUTPUT     ?= grades
STUDENT    ?=
ONLY       ?=
JOBS       ?= 1
AGENT_ID   ?= 1
NOTEBOOK   ?= assignment/neuroevolution/neuroevolution.ipynb
PYTEST_ARGS ?=
TEST_WORKERS ?= 3
BENCH_ARGS ?=
BENCH_DIR  ?= build/bench
FROM       ?=
ROSTER     ?=
PUBLISH    ?=
KIT_URL    ?=

PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export UV_PYTHON_DOWNLOADS ?= never

.DEFAULT_GOAL := help
.PHONY: help install assignment student-kit check grade collect feedback export report gradescope test test-extended lint render bench bench-readme lock clean

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-13s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# Bytecode is compiled once here: sandboxed runs see the environment read-only and could not cache it.
$(STAMP): pyproject.toml uv.lock requirements.lock
	@if command -v uv >/dev/null 2>&1; then \
		uv sync --frozen --compile-bytecode --python $(PYTHON); \
	else \
		echo "uv not found: installing the locked requirements with pip"; \
		$(PYTHON) -m venv $(VENV) && $(VENV)/bin/pip install -q -r requirements.lock; \
	fi
	@# uv leaves .venv/.lock writable by everyone; runs of student code must not be able to change the
	@# environment, and the grader refuses to start while they could.
	@chmod -R go-w $(VENV)
	@touch $@

install: $(STAMP) ## Create .venv with the locked packages (uv if present, else pip)

lock: ## Re-resolve uv.lock and requirements.lock after editing pyproject.toml
	uv lock --python $(PYTHON)
	uv export --frozen --no-hashes --no-header --format requirements-txt -o requirements.lock

assignment: $(STAMP) ## Regenerate the student release from solutions/ with nbgrader (KIT_URL=... for Colab's kit link)
	$(PY) -m tools.release $(if $(KIT_URL),--kit-url "$(KIT_URL)")

student-kit: $(STAMP) ## Build dist/neuroevolution-student/ and its zip: what students get (run `make assignment` first)
	$(PY) -m tools.student_kit

check: $(STAMP) ## Student self-check: run the visible tests on NOTEBOOK
	$(PY) -m tools.selfcheck $(NOTEBOOK)

grade: $(STAMP) ## Grade every submission in SUBMITTED into OUTPUT (or one: STUDENT=id; regrade ONLY=inconclusive|errors; JOBS=N at once)
	$(PY) -m autograder grade --submitted $(SUBMITTED) --output $(OUTPUT) --jobs $(JOBS) $(if $(STUDENT),--student $(STUDENT)) $(if $(ONLY),--only $(ONLY))

collect: $(STAMP) ## Fill SUBMITTED from a download: make collect FROM=submissions.zip (Canvas, Gradescope, folders, exchange)
	@test -n "$(FROM)" || { echo "make collect: pass FROM=<the downloaded zip or folder>"; exit 2; }
	$(PY) -m autograder collect "$(FROM)" --submitted $(SUBMITTED)

feedback: $(STAMP) ## Stage feedback pages: feedback/ for nbgrader release_feedback, dist/feedback/<id>.zip (PUBLISH=1 shows hidden tests)
	$(PY) -m autograder feedback --output $(OUTPUT) --submitted $(SUBMITTED) $(if $(PUBLISH),--publish)

export: $(STAMP) ## Write OUTPUT/export.csv (a column per part), or with ROSTER=lms.csv an LMS-ready OUTPUT/lms-upload.csv
	$(PY) -m autograder export --output $(OUTPUT) --submitted $(SUBMITTED) $(if $(ROSTER),--roster "$(ROSTER)")

report: $(STAMP) ## Write OUTPUT/report.html: the class at a glance (scores, failures, speedups, similar code, late work)
	$(PY) -m autograder report --output $(OUTPUT) --submitted $(SUBMITTED) $(if $(ROSTER),--roster "$(ROSTER)")

gradescope: $(STAMP) ## Build dist/gradescope-autograder.zip (setup.sh + run_autograder) for a Gradescope autograder
	$(PY) -m tools.gradescope

test: $(STAMP) ## Run the project's own tests (about 6 minutes): TEST_WORKERS at once, then the timed ones alone
	@# exit status 5: PYTEST_ARGS selected no test in that half
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile -m "not timed and not extended" $(PYTEST_ARGS) || [ $$? -eq 5 ]
	$(PY) -m pytest -m "timed and not extended" $(PYTEST_ARGS) || [ $$? -eq 5 ]

test-extended: $(STAMP) ## The tests make test leaves out: whole corpora, fork and forkserver, kill and rerun (CI runs it)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile -m "not timed and extended" $(PYTEST_ARGS) || [ $$? -eq 5 ]
	$(PY) -m pytest -m "timed and extended" $(PYTEST_ARGS) || [ $$? -eq 5 ]

lint: $(STAMP) ## Check the code with ruff: lint rules and formatting (settings in pyproject.toml)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

render: $(STAMP) ## Watch the saved agent AGENT_ID (a GIF on a machine without a display)
	$(PY) render.py --agent_id $(AGENT_ID)

bench: $(STAMP) ## Run the benchmarks (minutes), print their tables; JSON and figures go to BENCH_DIR
	$(PY) -m benchmarks --out $(BENCH_DIR) $(BENCH_ARGS)

bench-readme: $(STAMP) ## Run the benchmarks and redraw the README's figures in docs/ (commit them with its numbers)
	$(PY) -m benchmarks --out $(BENCH_DIR) --plots docs $(BENCH_ARGS)

clean: ## Remove the environment, grades and caches
	rm -rf $(VENV) $(OUTPUT) build .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
