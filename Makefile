# One-command entry points. Each target creates or updates its own virtual environment.
#   make run            set up .venv and open the desktop app (pass photos: make run ARGS="a.jpg b.jpg")
#   make classify ARGS="photo.jpg"   set up .venv and classify on the command line
#   make test           set up .venv (with the training/test extras) and run the whole test suite
#   make dist           build the standalone app in .venv-dist (CPU-only torch, no torchvision)

PYTHON ?= python3
VENV ?= .venv
# torchvision is only for training and the equivalence test; this pair installs together here.
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
DIST_VENV ?= .venv-dist
DIST_TORCH_SPEC ?= torch==2.13.0
PIP_FLAGS ?= --disable-pip-version-check -q
export MALLOC_MMAP_THRESHOLD_ ?= 268435456
export MALLOC_TRIM_THRESHOLD_ ?= 536870912

.PHONY: venv run classify test dist clean

$(VENV)/.installed: pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install $(PIP_FLAGS) $(TORCH_SPEC)
	$(VENV)/bin/pip install $(PIP_FLAGS) -e '.[dev,train]'
	touch $@

venv: $(VENV)/.installed

run: venv
	$(VENV)/bin/snakeid-desktop $(ARGS)

classify: venv
	$(VENV)/bin/snakeid classify $(ARGS)

# tests/test_frozen.py builds dist/ and smoke-tests it (~5 min from scratch here); TEST_FROZEN=0 skips it.
TEST_FROZEN ?= 1

test: venv
	QT_QPA_PLATFORM=offscreen SNAKEID_TEST_FROZEN=$(TEST_FROZEN) $(VENV)/bin/python -m pytest $(PYTEST_ARGS)

dist:
	DIST_VENV='$(DIST_VENV)' DIST_TORCH_SPEC='$(DIST_TORCH_SPEC)' bash scripts/build_dist.sh

clean:
	rm -rf build dist
