# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Stoplight Prism, for the Twilio contract test (tests/test_twilio_contract.py). 5.14.2 is the newest
# release that runs on Node 18/20 (5.15+ needs Node >= 24); the stamp names the version, so changing
# it reinstalls.
PRISM_VERSION := 5.14.2
PRISM_STAMP := .prism/.installed-$(PRISM_VERSION)

# The knowledge base the ingestion and retrieval benchmarks read: the shared help-centre corpus when
# it is beside the project, else the bundled sample.
CORPUS ?= $(firstword $(wildcard ../shared/corpus/cuidadodesalud) sample_kb)

.PHONY: run test install bench audit clean

run: $(STAMP)  ## install, then run the assistant on embedded defaults (127.0.0.1:8000)
	$(BIN)/python scripts/run_local.py

test: $(STAMP) $(PRISM_STAMP)  ## install, then run the test suite
	$(BIN)/python -m pytest

install: $(STAMP) $(PRISM_STAMP)

bench: $(STAMP)  ## the benchmarks, each against a baseline measured in the same run (about 7 minutes)
	$(BIN)/python scripts/bench_webhook.py
	$(BIN)/python scripts/bench_slow_clients.py
	$(BIN)/python scripts/bench_retrieval_scale.py --corpus $(CORPUS)
	$(BIN)/python scripts/bench_ingest.py $(CORPUS) --limit 100
	$(BIN)/python scripts/bench_load.py --customers 1000 --messages 1 --rate 20 --warm-up 50

$(STAMP): requirements.txt requirements-dev.txt constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt -c constraints.txt
	touch $(STAMP)

$(PRISM_STAMP):  ## without npm, only a note: the contract test then skips
	@if command -v npm >/dev/null 2>&1; then \
		echo "installing @stoplight/prism-cli@$(PRISM_VERSION) into .prism/"; \
		npm install --prefix .prism --save-exact --no-audit --no-fund --loglevel=error \
			@stoplight/prism-cli@$(PRISM_VERSION) && touch $@; \
	else \
		echo "note: npm not found, Prism not installed; the Twilio contract test will be skipped"; \
	fi

audit:  ## check every pinned package for known vulnerabilities (needs PyPI's JSON API or OSV)
	test -x .audit-venv/bin/pip-audit || { $(PYTHON) -m venv .audit-venv && .audit-venv/bin/pip install --quiet pip-audit==2.10.1; }
	.audit-venv/bin/pip-audit --strict --no-deps --disable-pip -r constraints.txt

clean:
	rm -rf $(VENV) var .pytest_cache .prism .audit-venv
