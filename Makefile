# Single entry point: `make demo` and `make test` set up what they need (idempotently), then run.
SHELL := /bin/bash
VENV ?= .venv
LAVA_VENV ?= .venv-lava
PYTHON312 ?= $(shell for p in python3.12 $$(ls -d $$HOME/.pyenv/versions/3.12*/bin/python3.12 2>/dev/null); do $$p -c 'import sys; assert sys.version_info[:2]==(3,12)' 2>/dev/null && { echo $$p; break; }; done)
PYTHON310 ?= $(shell for p in python3.10 $$(ls -d $$HOME/.pyenv/versions/3.10*/bin/python3.10 2>/dev/null); do $$p -c 'import sys; assert sys.version_info[:2]==(3,10)' 2>/dev/null && { echo $$p; break; }; done)
PY := $(VENV)/bin/python
# torch on a busy 2-core machine is usually fastest with one thread
export FEMSNN_TORCH_THREADS ?= 1
export OMP_NUM_THREADS ?= 1
export MPLBACKEND ?= Agg

# pip install ($(1): python, $(2): arguments), tried up to 5 times: torch's CUDA wheels are GBs and a download that
# breaks off (seen in CI) should not fail the set-up
PIP_RETRY_WAIT ?= 30
define pip_install
( for attempt in 1 2 3 4 5; do $(1) -m pip install -q $(2) && exit 0; \
    test $$attempt = 5 || { echo "pip install failed (attempt $$attempt of 5); retrying in $(PIP_RETRY_WAIT) s" >&2; \
    sleep $(PIP_RETRY_WAIT); }; done; exit 1 )
endef

.PHONY: venv lava-venv demo surrogate surrogate-wide test test-unit test-mpi test-lava bench clean

venv: $(VENV)/.stamp
$(VENV)/.stamp: pyproject.toml
	@test -n "$(PYTHON312)" || { echo "error: Python 3.12 not found (set PYTHON312=...)"; exit 1; }
	@test -x $(PY) || $(PYTHON312) -m venv $(VENV)
	$(call pip_install,$(PY),--upgrade pip)
	$(call pip_install,$(PY),--resume-retries 20 -e '.[test]')
	@touch $@

lava-venv: $(LAVA_VENV)/.stamp
$(LAVA_VENV)/.stamp: femsnn/loihi/requirements-lava.txt
	@test -n "$(PYTHON310)" || { echo "error: Python 3.10 not found (set PYTHON310=...)"; exit 1; }
	@test -x $(LAVA_VENV)/bin/python || $(PYTHON310) -m venv $(LAVA_VENV)
	$(call pip_install,$(LAVA_VENV)/bin/python,--upgrade pip)
	$(call pip_install,$(LAVA_VENV)/bin/python,--resume-retries 20 -r femsnn/loihi/requirements-lava.txt)
	@touch $@

# the thick-walled cylinder with the J2 reference, then reference and shipped spiking surrogate side by side (CPU, minutes)
demo: venv
	$(VENV)/bin/femsnn simulate examples/cylinder/reference.toml
	$(VENV)/bin/femsnn compare examples/cylinder/compare.toml

# reproduce the shipped surrogates from the repository configs: harvest FE paths, train the three CPU-trained ones
# (from scratch), ship the models, evaluate them on the harvest's test programs, on the cylinder and on the cyclic
# plate (the examples run the wide model: make surrogate-wide)
SURROGATE_RUN := runs/surrogate
surrogate: venv
	$(VENV)/bin/femsnn harvest examples/surrogate/harvest.toml
	$(VENV)/bin/femsnn train examples/surrogate/train.toml --restart
	cp $(SURROGATE_RUN)/train/model.pt femsnn/models/cylinder_j2_plane_strain.pt
	$(VENV)/bin/femsnn evaluate femsnn/models/cylinder_j2_plane_strain.pt $(SURROGATE_RUN)/harvest/dataset.npz --out $(SURROGATE_RUN)/evaluate
	$(VENV)/bin/femsnn energy femsnn/models/cylinder_j2_plane_strain.pt $(SURROGATE_RUN)/harvest/dataset.npz --out $(SURROGATE_RUN)/energy
	cp $(SURROGATE_RUN)/energy/energy.json femsnn/models/cylinder_j2_plane_strain.energy.json
	$(VENV)/bin/femsnn train examples/surrogate/train_cyclic.toml --restart
	cp $(SURROGATE_RUN)/train_cyclic/model.pt femsnn/models/cylinder_j2_plane_strain_cyclic.pt
	$(VENV)/bin/femsnn evaluate femsnn/models/cylinder_j2_plane_strain_cyclic.pt $(SURROGATE_RUN)/harvest/dataset.npz --out $(SURROGATE_RUN)/evaluate_cyclic
	$(VENV)/bin/femsnn harvest examples/surrogate/harvest_large_steps.toml
	$(VENV)/bin/femsnn train examples/surrogate/train_trial.toml --restart
	cp $(SURROGATE_RUN)/train_trial/model.pt femsnn/models/cylinder_j2_plane_strain_trial.pt
	$(VENV)/bin/femsnn evaluate femsnn/models/cylinder_j2_plane_strain_trial.pt $(SURROGATE_RUN)/harvest_large_steps/dataset.npz --out $(SURROGATE_RUN)/evaluate_trial

# the examples' surrogate, trained on a CUDA GPU (examples/surrogate/train_wide.toml: an H100 and torch 2.11 gave the
# shipped weights; 5.5 min there), then both example comparisons with it
surrogate-wide: venv
	$(VENV)/bin/femsnn harvest examples/surrogate/harvest_wide.toml
	$(VENV)/bin/femsnn train examples/surrogate/train_wide.toml --restart
	cp $(SURROGATE_RUN)/train_wide/model.pt femsnn/models/cylinder_j2_plane_strain_wide.pt
	$(VENV)/bin/femsnn evaluate femsnn/models/cylinder_j2_plane_strain_wide.pt $(SURROGATE_RUN)/harvest_wide/dataset.npz --out $(SURROGATE_RUN)/evaluate_wide
	$(VENV)/bin/femsnn compare examples/cylinder/compare.toml
	$(VENV)/bin/femsnn compare examples/plate_cyclic/compare.toml

test: venv lava-venv
	$(PY) -m pytest -q -m "not mpi" tests
	$(MAKE) --no-print-directory test-mpi

test-mpi: venv
	$(VENV)/bin/mpiexec -n 2 $(PY) -m pytest -q -m mpi -p no:cacheprovider tests

bench: venv lava-venv
	for b in benchmarks/bench_*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) $(LAVA_VENV) .pytest_cache
