# schoolmesh — everything a fresh machine needs is installed from here.
#   make demo   set up, then run the narrated demo on a throwaway home
#   make test   set up (Python venv + the JavaScript IPFS tools used as interop peers), then test
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)
JS     := tests/js
JSSTAMP := $(JS)/node_modules/.installed-$(shell cat $(JS)/package-lock.json 2>/dev/null | sha256sum | cut -c1-12)

.PHONY: demo test venv js bench clean system-deps

demo: venv
	$(PY) -m cli.demo

test: venv js
	$(PY) -m pytest $(PYTEST_ARGS)

venv: $(STAMP)
$(STAMP): pyproject.toml
	@$(MAKE) --no-print-directory system-deps
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $@

# py-libp2p pulls fastecdsa, which compiles against GMP. Install the headers only if missing.
system-deps:
	@if ! echo '#include <gmp.h>' | gcc -E - >/dev/null 2>&1; then \
		echo "installing libgmp-dev (needed to build fastecdsa for py-libp2p)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libgmp-dev; \
	fi

js: $(JSSTAMP)
$(JSSTAMP): $(JS)/package-lock.json
	cd $(JS) && npm ci --no-audit --no-fund --loglevel=error
	rm -f $(JS)/node_modules/.installed-* && touch $@

bench: venv
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) $(JS)/node_modules .pytest_cache .demo
