# ml_tomo — build, test, demo and benchmark entry points.
# `make demo` and `make test` work on a fresh Debian machine: they install what they need.

SHELL := /bin/bash
SWIFT ?= swift
# Swift's default x86-64 baseline makes the SIMD kernels very slow: build for x86-64-v3 (AVX2, FMA).
# swiftc 6.3 does not know the name "x86-64-v3"; "haswell" is the same feature level.
ARCH_FLAGS := -Xswiftc -target-cpu -Xswiftc haswell -Xcc -march=x86-64-v3
RELEASE := -c release $(ARCH_FLAGS)
BIN_DIR = $(shell $(SWIFT) build $(RELEASE) --show-bin-path 2>/dev/null)
# relion: the RELION real-client tests; chromium: the report's browser test (headless screenshot).
APT_PACKAGES := libopenmpi-dev openmpi-bin libfftw3-dev libfftw3-mpi-dev libhdf5-dev hdf5-tools \
                pkg-config python3 python3-pip relion chromium
PY_PACKAGES := mrcfile starfile h5py xmipp-metadata numpy scipy dynamotable emfile eulerangles
# mpirun as root (CI, containers) must be allowed explicitly.
export OMPI_ALLOW_RUN_AS_ROOT := 1
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM := 1
export OMPI_MCA_rmaps_base_oversubscribe := 1

.PHONY: all deps build test fuzz demo bench clean

all: build

deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@python3 -c "import mrcfile, starfile, h5py, xmipp_metadata, numpy, scipy, dynamotable, emfile, eulerangles" 2>/dev/null || \
	  { echo "deps: installing Python readers ($(PY_PACKAGES))"; \
	    python3 -m pip install -q $(PY_PACKAGES) 2>/dev/null || \
	    python3 -m pip install -q --break-system-packages $(PY_PACKAGES); \
	    python3 -c "import mrcfile, starfile, h5py, xmipp_metadata, numpy, scipy, dynamotable, emfile, eulerangles"; }

build: deps
	$(SWIFT) build $(RELEASE) --product ml_tomo
	@echo "built: $(BIN_DIR)/ml_tomo"

# The test suite launches the release binary under mpirun; ML_TOMO_BIN tells it where that is.
test: build
	ML_TOMO_BIN="$(BIN_DIR)/ml_tomo" $(SWIFT) test $(RELEASE) --no-parallel
	SWIFT=$(SWIFT) Fuzz/run.sh 10

# libFuzzer on the file readers (STAR/sel/doc, MRC, Spider, HDF5), FUZZ_SECONDS per target; `make test` runs 10 s.
FUZZ_SECONDS ?= 300
fuzz: deps
	SWIFT=$(SWIFT) Fuzz/run.sh $(FUZZ_SECONDS)

# A real complex, two states, tomogram SNR, no reference: the 80S ribosome (EMD-3883, fetched once from
# PyPI) in 200 subtomograms of 32³ at 17.3 Å/px, one state lacking a sphere of r = 7 px at the periphery
# (a missing subunit or factor), SNR 0.05, ±60° wedge; a reference-free 2-rank refinement; its scores.
DEMO_DIR ?= demo-run
demo: build
	@rm -rf $(DEMO_DIR) && mkdir -p $(DEMO_DIR)
	@echo "== 1/4 fetch the 80S ribosome map (EMD-3883) =="
	@map=$${RIBOSOME:-$$(bash bench/fetch-ribosome.sh)} && echo "$$map" > $(DEMO_DIR)/map.path && echo "map: $$map"
	@echo "== 2/4 simulate: 200 particles of 32^3, 2 states (one lacks a peripheral sphere of r = 7 px), SNR 0.05, +-60 deg wedge_y =="
	"$(BIN_DIR)/ml_tomo" simulate $(DEMO_DIR)/data --phantom "$$(cat $(DEMO_DIR)/map.path)" --remove-sphere 7 \
	    --sphere-distance 0.25 --particles 200 --size 32 --classes 2 --snr 0.05 --missing wedge_y --tilt-range 60 \
	    --shift-sigma 1.5 --pixel-size 17.32 --seed 7
	@echo "== 3/4 refine: mpirun -np 2, reference-free, 2 classes, 15 deg, 10 iterations =="
	cd $(DEMO_DIR)/data && time mpirun -np 2 --bind-to none "$(BIN_DIR)/ml_tomo" -i images.sel --doc images.doc \
	    --missing wedges.doc --oroot ../run/demo --nref 2 --ang 15 --iter 10
	@echo "== 4/4 evaluate against the truth, and the report =="
	"$(BIN_DIR)/ml_tomo" evaluate --truth $(DEMO_DIR)/data --doc $(DEMO_DIR)/run/demo.doc \
	    --refs $(DEMO_DIR)/run/demo_ref000001.mrc $(DEMO_DIR)/run/demo_ref000002.mrc
	"$(BIN_DIR)/ml_tomo" report $(DEMO_DIR)/run/demo
	@echo "outputs: $(DEMO_DIR)/run/demo.doc (angles, shifts, classes; Xmipp), $(DEMO_DIR)/run/demo_data.star (RELION),"
	@echo "         $(DEMO_DIR)/run/demo_ref00000[12].mrc (class maps), $(DEMO_DIR)/run/demo.h5, $(DEMO_DIR)/run/demo_report.html"

bench: build
	"$(BIN_DIR)/ml_tomo" bench --output bench/results

clean:
	rm -rf .build
