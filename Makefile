# dlmath: `make html` builds the book, `make test` runs the tests and doctests.
# Both set themselves up on a fresh machine: virtual environment, dependencies, kernel.
#
# Variables you may override:
#   PYTHON      the interpreter that creates the venv            (default: python3)
#   VENV        where the virtual environment lives              (default: .venv)
#   TORCH_SPEC  how torch is installed (default: torch==2.13.0, which from PyPI on Linux is
#               the CUDA build); for the CPU-only wheel, when .venv is created:
#               make html TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
#   BUILDDIR    where the site and caches go                     (default: _build)
#   SPHINXOPTS  extra sphinx-build options
#   PYTEST_ARGS extra pytest arguments
#   PYTEST_JOBS pytest worker processes (default: auto, one per core; 0 runs in-process)
#   CHROMIUM    the browser `make check-site` drives           (default: /usr/bin/chromium)

PYTHON     ?= python3
VENV       ?= .venv
TORCH_SPEC ?= torch==2.13.0
BUILDDIR   ?= _build
SPHINXOPTS ?=
PYTEST_ARGS ?=
PYTEST_JOBS ?= auto
CHROMIUM   ?= /usr/bin/chromium

BIN    := $(VENV)/bin
PY     := $(BIN)/python
STAMP  := $(VENV)/.dlmath-installed
KERNEL := dlmath
STRICT := -W --keep-going -n -T

.PHONY: help html test doctest book-doctest bench check-site clean clean-all install
.DEFAULT_GOAL := help

help:
	@echo "make html     build the book into $(BUILDDIR)/html, executing every chapter"
	@echo "make test     run the tests, the package's doctests and the book's doctest blocks"
	@echo "make doctest  run only the doctests (package and book)"
	@echo "make bench    run the benchmarks and write $(BUILDDIR)/bench.json"
	@echo "make check-site  load every page of the built site in headless Chromium, offline"
	@echo "make install  create $(VENV) and install everything (done by the others when needed)"
	@echo "make clean    remove the built site and execution caches"
	@echo "make clean-all  also remove $(VENV)"

# The torch spec is remembered (rewritten only when it differs, when the Makefile is read),
# so that a different TORCH_SPEC triggers a reinstall and the same one does not.
_torch_spec := $(shell mkdir -p $(VENV) && { echo '$(TORCH_SPEC)' | cmp -s - $(VENV)/.torch-spec \
                 || echo '$(TORCH_SPEC)' > $(VENV)/.torch-spec; })

# torch alone, reinstalled when TORCH_SPEC changes: the CPU and CUDA builds of one version
# carry the same version number, so a plain `pip install` would keep the one already there.
$(VENV)/.torch-installed: $(VENV)/.torch-spec
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --force-reinstall $(TORCH_SPEC)
	touch $@

$(STAMP): pyproject.toml $(VENV)/.torch-installed
	$(PY) -m pip install -e ".[book,test]"
	$(PY) -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python (dlmath)"
	touch $@

install: $(STAMP)

html: $(STAMP)
	TORCH_SPEC='$(TORCH_SPEC)' DLMATH_BUILDDIR=$(BUILDDIR) $(BIN)/sphinx-build -b html -c . $(STRICT) $(SPHINXOPTS) book $(BUILDDIR)/html
	@echo "The book is in $(BUILDDIR)/html/index.html"

test: $(STAMP)
	$(PY) -m pytest -n $(PYTEST_JOBS) $(PYTEST_ARGS)
	$(MAKE) --no-print-directory book-doctest

doctest: $(STAMP)
	$(PY) -m pytest -n $(PYTEST_JOBS) dlmath $(PYTEST_ARGS)
	$(MAKE) --no-print-directory book-doctest

# The book's {doctest} blocks, without executing the notebooks (they are checked by `make html`).
book-doctest: $(STAMP)
	TORCH_SPEC='$(TORCH_SPEC)' DLMATH_BUILDDIR=$(BUILDDIR) DLMATH_NB_EXECUTION=off $(BIN)/sphinx-build -b doctest -c . -q $(STRICT) -D suppress_warnings=mystnb.glue book $(BUILDDIR)/doctest

bench: $(STAMP)
	$(PY) benchmarks/run.py --out $(BUILDDIR)/bench.json

# The built site, checked in a real browser with the network blocked (installs Debian's
# chromium if it is missing, and Playwright to drive it).
$(VENV)/.site-check-installed: $(STAMP)
	$(PY) -m pip install -e ".[site-check]"
	touch $@

check-site: $(VENV)/.site-check-installed
	@test -x $(CHROMIUM) || { echo "installing chromium (Debian package)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -q && $$SUDO apt-get install -y -q chromium; }
	$(PY) -m pytest tests/browser -q --site-dir $(BUILDDIR)/html \
	  --artefacts $(BUILDDIR)/site-check --chromium $(CHROMIUM)
	@echo "Screenshots are in $(BUILDDIR)/site-check/screenshots"

clean:
	rm -rf $(BUILDDIR) .hypothesis
	find . -name __pycache__ -not -path './$(VENV)/*' -prune -exec rm -rf {} +

clean-all: clean
	rm -rf $(VENV) *.egg-info
