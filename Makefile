# schoolmesh — everything a fresh machine needs is installed from here.
#   make demo   set up, then run the narrated demo on a throwaway home
#   make test   set up (Debian packages, Python venv, the JavaScript IPFS tools used as interop
#               peers, headless Chromium for the browser tests), then test
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)
JS     := tests/js
# the CLI's compiled translations (cli/i18n.py reads the .po itself when a .mo is missing or
# older, so a fresh clone speaks Chinese before this has run)
CATALOGS := $(patsubst %.po,%.mo,$(wildcard cli/locale/*/LC_MESSAGES/*.po))
JSSTAMP := $(JS)/node_modules/.installed-$(shell cat $(JS)/package-lock.json 2>/dev/null | sha256sum | cut -c1-12)

.PHONY: demo test venv js bench bench-deps clean system-deps

demo: venv
	$(PY) -m cli.demo

test: system-deps venv js
	$(PY) -m pytest $(PYTEST_ARGS)

venv: $(STAMP) $(CATALOGS)
$(STAMP): pyproject.toml
	@$(MAKE) --no-print-directory system-deps
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# llama-cpp-python (the AI engine of tests/test_ai.py) compiles llama.cpp from source here
	CMAKE_BUILD_PARALLEL_LEVEL=2 CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF" \
		$(PY) -m pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $@

# Debian packages, each installed only if missing:
#   libgmp-dev       py-libp2p pulls fastecdsa, which compiles against GMP
#   chromium         the headless browser of tests/test_web_browser.py and docs/screenshots.py
#   fonts-noto-cjk   Chinese glyphs in that browser (screenshots)
#   rsync            the same-run comparison of bench/links.py (rural links)
#   systemd          systemd-analyze, which checks the unit of 'schoolmesh service install'
#   zbar-tools       zbarimg, the QR decoder that reads back the codes of 'status' and /where
#   libreoffice-writer-nogui, -impress-nogui, -calc-nogui
#                    headless LibreOffice: Office files to PDF for the web previews (no GUI,
#                    no recommends: the smallest set that converts .docx/.pptx/.xlsx/.doc/.ppt)
#   poppler-utils    pdftoppm/pdfinfo: PDF pages to the PNG images of the web previews
#   cmake, g++       llama-cpp-python (the tests' AI engine) is compiled from source by pip
system-deps:
	@pkgs=""; \
	echo '#include <gmp.h>' | gcc -E - >/dev/null 2>&1 || pkgs="$$pkgs libgmp-dev"; \
	command -v chromium >/dev/null 2>&1 || pkgs="$$pkgs chromium"; \
	fc-list :lang=zh 2>/dev/null | grep -q . || pkgs="$$pkgs fonts-noto-cjk"; \
	command -v rsync >/dev/null 2>&1 || pkgs="$$pkgs rsync"; \
	command -v systemd-analyze >/dev/null 2>&1 || pkgs="$$pkgs systemd"; \
	command -v zbarimg >/dev/null 2>&1 || pkgs="$$pkgs zbar-tools"; \
	command -v pdftoppm >/dev/null 2>&1 || pkgs="$$pkgs poppler-utils"; \
	command -v cmake >/dev/null 2>&1 || pkgs="$$pkgs cmake"; \
	command -v g++ >/dev/null 2>&1 || pkgs="$$pkgs g++"; \
	if [ -n "$$pkgs" ]; then \
		echo "installing$$pkgs"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$pkgs; \
	fi; \
	command -v soffice >/dev/null 2>&1 || { echo "installing LibreOffice (headless)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends libreoffice-writer-nogui libreoffice-impress-nogui \
		libreoffice-calc-nogui; }

%.mo: %.po $(STAMP)
	$(VENV)/bin/pybabel compile --statistics -i $< -o $@

js: $(JSSTAMP)
$(JSSTAMP): $(JS)/package-lock.json
	cd $(JS) && npm ci --no-audit --no-fund --loglevel=error
	rm -f $(JS)/node_modules/.installed-* && touch $@

# Debian packages only the benchmarks use (not `make test`):
#   syncthing        the same-run comparison of bench/bitswap.py and bench/links.py
bench-deps:
	@command -v syncthing >/dev/null 2>&1 || { echo "installing syncthing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq syncthing; }

bench: venv bench-deps
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) $(JS)/node_modules .pytest_cache .demo
