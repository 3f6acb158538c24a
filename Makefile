# The book's commands. On a fresh clone:
#   make book   -- install what is needed and build the website into _build/html
#   make test   -- install what is needed and run every test (lint, unit, notebooks, site)
#   make unit-fast -- the unit tests that take seconds, without training runs (slow) or the site
#   make lab    -- open the chapters in JupyterLab
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
# CI installs the exact versions of constraints.txt, so that a new upstream release cannot
# break main overnight; `make CONSTRAINTS=` installs the newest that requirements.txt allows.
# torch: the pin in constraints.txt (the one place it is written); readers may override it:
# make CONSTRAINTS= TORCH=torch
CONSTRAINTS ?= -c constraints.txt
TORCH ?= $(shell grep -m1 '^torch==' constraints.txt)
export FMBOOK_DATA_MIRROR ?= $(abspath ../shared/data)

# Each pytest worker and each notebook kernel computes on ONE thread: two workers, each
# running torch with a thread per core, oversubscribe the two cores, and torch's spinning
# OpenMP threads then wait on each other (measured: a 22-s smoke cell took 209 s).
ONE_THREAD := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

.PHONY: install book test checks lab lint unit unit-fast notebooks site browser benchmarks clean colab student-pack pdf tex

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(CONSTRAINTS) "$(TORCH)"
	$(PY) -m pip install -q $(CONSTRAINTS) -r requirements.txt
	$(PY) -m pip install -q $(CONSTRAINTS) -e .
	touch $@

# --- the website (Jupyter Book 1.x; configured in _config.yml and _toc.yml) ---
# The site serves its own MathJax so that formulas render offline: `make mathjax` fetches
# the npm package once into .cache/ (ignored by git), and _config.yml (html_extra_path)
# copies it to _build/html/mathjax/. Only MathJax's browser build (es5/) is kept, without
# the other combined builds and without latest.js (the one file that loads from a CDN).
MATHJAX_VERSION ?= 3.2.2
MATHJAX_SITE := .cache/site-extra/mathjax
MATHJAX_TMP := .cache/mathjax-npm

.PHONY: mathjax
mathjax: $(MATHJAX_SITE)/.version-$(MATHJAX_VERSION)

$(MATHJAX_SITE)/.version-$(MATHJAX_VERSION):
	@command -v npm >/dev/null || { echo "make mathjax: npm (Node.js) is needed to fetch MathJax" >&2; exit 1; }
	rm -rf $(MATHJAX_TMP) $(MATHJAX_SITE)
	mkdir -p $(MATHJAX_TMP) $(dir $(MATHJAX_SITE))
	cd $(MATHJAX_TMP) && npm pack --silent mathjax@$(MATHJAX_VERSION) >/dev/null
	tar -xzf $(MATHJAX_TMP)/mathjax-$(MATHJAX_VERSION).tgz -C $(MATHJAX_TMP)
	mv $(MATHJAX_TMP)/package/es5 $(MATHJAX_SITE)
	cp $(MATHJAX_TMP)/package/LICENSE $(MATHJAX_SITE)/LICENSE
	cd $(MATHJAX_SITE) && rm -f latest.js node-main.js core.js loader.js startup.js \
	    mml-*.js tex-mml-*.js tex-svg*.js tex-chtml-full*.js
	test -f $(MATHJAX_SITE)/tex-chtml.js
	rm -rf $(MATHJAX_TMP)
	touch $@

# reveal.js for the slide decks, the same way: fetched once from npm into .cache/ and served
# by the site at reveal.js/ (only dist/: the script, its CSS and themes with their fonts).
REVEAL_VERSION ?= 5.2.1
REVEAL_SITE := .cache/site-extra/reveal.js
REVEAL_TMP := .cache/reveal-npm

.PHONY: reveal slides
reveal: $(REVEAL_SITE)/.version-$(REVEAL_VERSION)

$(REVEAL_SITE)/.version-$(REVEAL_VERSION):
	@command -v npm >/dev/null || { echo "make reveal: npm (Node.js) is needed to fetch reveal.js" >&2; exit 1; }
	rm -rf $(REVEAL_TMP) $(REVEAL_SITE)
	mkdir -p $(REVEAL_TMP) $(REVEAL_SITE)
	cd $(REVEAL_TMP) && npm pack --silent reveal.js@$(REVEAL_VERSION) >/dev/null
	tar -xzf $(REVEAL_TMP)/reveal.js-$(REVEAL_VERSION).tgz -C $(REVEAL_TMP)
	mv $(REVEAL_TMP)/package/dist $(REVEAL_SITE)/dist
	cp $(REVEAL_TMP)/package/LICENSE $(REVEAL_SITE)/LICENSE
	rm -f $(REVEAL_SITE)/dist/*.map $(REVEAL_SITE)/dist/reveal.esm.js
	test -f $(REVEAL_SITE)/dist/reveal.js
	rm -rf $(REVEAL_TMP)
	touch $@

# One slide deck per part, generated from the chapters (tools/slides.py), served at slides/.
slides: install reveal mathjax
	$(PY) tools/slides.py --out .cache/site-extra/slides

# --all rereads every page, so that -W (warnings are errors) and -n (every reference must
# resolve) judge the whole book on every build, not only the pages that changed.
book: install mathjax slides
	$(VENV)/bin/jupyter-book build . --all -W -n --keep-going

# The printable book: _build/latex/fmbook.pdf, through Jupyter Book's LaTeX builder with
# XeLaTeX (fonts: FreeSerif, Noto CJK for the Chinese example; see _config.yml), then a check
# of the PDF (tests/test_pdf.py). About 3 minutes on 2 cores, plus Debian's TeX packages the
# first time (`make tex` installs them when missing and we are root). Not part of `make test`:
# the TeX install alone would add minutes to every CI run; run it before a release.
TEX_PACKAGES := texlive-xetex texlive-latex-recommended texlive-latex-extra \
    texlive-fonts-recommended texlive-lang-chinese latexmk lmodern xindy poppler-utils \
    fonts-freefont-otf fonts-noto-cjk fontconfig
tex:
	@{ command -v xelatex && command -v latexmk && command -v xindy && command -v pdftotext \
	    && fc-list | grep -q FreeSerif && fc-list | grep -qi "Noto Serif CJK"; } >/dev/null || { \
	    if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	            --no-install-recommends $(TEX_PACKAGES) >/dev/null; \
	    else echo "make tex: install $(TEX_PACKAGES) (apt-get install ...)" >&2; exit 1; fi; }

pdf: install tex
	rm -rf _build/latex
	$(VENV)/bin/jupyter-book build . --builder pdflatex
	$(PY) -m pytest -q -p no:cacheprovider -m pdf tests/test_pdf.py

# Notebooks for Colab and downloads (citations as text, links to the website, glued numbers
# filled in, solutions folded), generated from the chapters into _build/colab/; the book
# workflow publishes them to the `colab` branch, which the launch buttons open. The student
# edition (no solutions) and the teacher edition (solutions shown) go to editions/ there.
colab: install
	$(PY) tools/colab.py --out _build/colab
	$(PY) tools/colab.py --out _build/colab/editions/student --edition student
	$(PY) tools/colab.py --out _build/colab/editions/teacher --edition teacher

lab: install
	$(VENV)/bin/jupyter lab chapters

# The course's student pack: the assignments (assignments/) with every solution removed,
# autograders included, in dist/student-pack/ (see assignments/README.md).
student-pack: install
	$(PY) tools/student_pack.py --out dist/student-pack

lint: install
	$(VENV)/bin/ruff check fmbook tests chapters tools book/_ext assignments
	$(VENV)/bin/ruff format --check fmbook tests tools book/_ext assignments

# Unit tests, notebook structure, the Colab simulation. (Site tests need the build.)
# Two workers, one test file each (loadfile): the slow files (the Colab simulation, DDP)
# run beside the rest instead of after it. (The Colab simulation also covers what a separate
# fresh-venv test did: a wheel, a new venv, a chapter run in an empty folder.)
unit: install
	$(ONE_THREAD) $(PY) -m pytest -q -n 2 --dist loadfile --durations=10 -m "not site and not pdf" tests assignments

# The unit tests without those marked slow (training runs, a wheel build): a quick check while editing.
unit-fast: install
	$(PY) -m pytest -q -m "not slow and not site and not pdf" tests

# Every notebook, top to bottom, in the smoke profile; cells tagged nbval-check-output must
# reproduce their stored (full-profile) outputs.
notebooks: install
	$(ONE_THREAD) FMBOOK_PROFILE=smoke $(PY) -m pytest -q --nbval-lax -n 2 --dist loadfile \
	    --nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider chapters

# The built website as a reader sees it, in headless Chromium.
site: book browser
	$(PY) -m pytest -q -m site tests/test_site.py

# Debian's chromium for the site test, and fonts-noto-cjk so that Chinese characters render
# in the browser and in figures; installed here when missing and we are root (CI). `checks`
# needs it too: the figure test with Chinese text skips without the font, and matplotlib
# caches its font list the first time it runs (a font installed later goes unseen).
browser:
	@{ command -v chromium >/dev/null && fc-list 2>/dev/null | grep -qi "Noto Sans CJK"; } || { \
	    if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	            chromium fonts-noto-cjk fontconfig >/dev/null; \
	    else echo "make browser: install chromium and fonts-noto-cjk (apt-get install ...)" >&2; exit 1; fi; }

# `make test` runs the unit tests and the notebooks in one pool of two workers (one file
# each at a time), the slowest file (the Colab simulation) first, so that it runs beside
# the notebooks instead of holding up a stage of its own. FMBOOK_PROFILE=smoke sizes the
# notebooks; the tests that read the profile set it themselves.
checks: install browser
	$(ONE_THREAD) FMBOOK_PROFILE=smoke $(PY) -m pytest -q -n 2 --dist loadfile --durations=15 \
	    -m "not site and not pdf" \
	    --nbval-lax --nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider \
	    tests/test_colab_sim.py tests assignments chapters

test: lint checks site

# Every benchmark side by side (a few minutes); results to benchmarks/results/, numbers on
# the Performance page via benchmarks/README.md.
benchmarks: install
	$(PY) -m pip install -q $(CONSTRAINTS) -r benchmarks/requirements.txt
	$(PY) -m benchmarks

# --- the release assets: the book's own copies of its data and of its pretrained weights ---
# `make data-release` builds dist/$(DATA_TAG)/ from the data mirror (FMBOOK_DATA_MIRROR):
# the files of the data sets that no upstream URL serves byte for byte (fra-eng) or that
# are many files (FSDD, one tar), Tiny Shakespeare as a spare copy, and SHA256SUMS; then it
# fetches every data set from that folder, as a reader would, into an empty cache.
# `make weights-release` trains the pretrained BERT of each profile deterministically on the
# CPU (about 10 minutes for the full one) into dist/$(WEIGHTS_TAG)/ with SHA256SUMS; two
# builds give the same bytes. The registry (fmbook/data/registry.py, fmbook/pretrained.py)
# holds their SHA-256; data-release.yml uploads both folders as GitHub release assets.
DATA_TAG ?= data-v1
WEIGHTS_TAG ?= weights-v1
.PHONY: data-release weights-release
data-release:
	@test -f "$(FMBOOK_DATA_MIRROR)/SHA256SUMS" || { echo "make data-release: no data mirror at $(FMBOOK_DATA_MIRROR) (set FMBOOK_DATA_MIRROR)" >&2; exit 1; }
	cd "$(FMBOOK_DATA_MIRROR)" && sha256sum -c --quiet SHA256SUMS
	$(PY) tools/build_data_release.py --mirror "$(FMBOOK_DATA_MIRROR)" --out dist/$(DATA_TAG)
	cd dist/$(DATA_TAG) && sha256sum -c --quiet SHA256SUMS

weights-release:
	rm -rf dist/$(WEIGHTS_TAG)
	$(PY) tools/build_weights.py --out dist/$(WEIGHTS_TAG) --profiles smoke full
	cd dist/$(WEIGHTS_TAG) && sha256sum -c --quiet SHA256SUMS

clean:
	rm -rf _build
