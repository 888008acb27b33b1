# The two commands a fresh machine needs:  make demo  (train on the embedded default)  and  make test.
export KUBEFIT_TOOLS ?= $(HOME)/.cache/kubefit
export PATH := $(KUBEFIT_TOOLS)/bin:$(PATH)
JOBS ?= $(shell nproc)

.PHONY: all setup data build build-asan test unit demo clean

all: build

setup:
	hack/setup

# The real data sets (Debian debtags en/fr + a CI-sized slice) into data/; seconds when present.
data: setup
	hack/make-datasets

build: setup
	cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_ARGS) >/dev/null
	cmake --build build -j $(JOBS)

# Unit tests run under AddressSanitizer + UndefinedBehaviorSanitizer (CPU-only: the CUDA code
# is compiled and linked by the release build).
build-asan: setup
	cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DKUBEFIT_SANITIZE=ON -DKUBEFIT_CUDA=OFF $(CMAKE_ARGS) >/dev/null
	cmake --build build-asan -j $(JOBS)

# Every label: unit under sanitizers, the rest (reference, storage, apiserver, e2e, gpu) in release.
test: build build-asan data
	ctest --test-dir build-asan -L unit --output-on-failure -j $(JOBS)
	ctest --test-dir build -LE unit --output-on-failure

demo: build
	hack/demo

clean:
	rm -rf build build-asan
