# The two commands a fresh machine needs:  make demo  (a classifier trained here, in minutes)  and  make test.
export KUBEFIT_TOOLS ?= $(HOME)/.cache/kubefit
export PATH := $(KUBEFIT_TOOLS)/bin:$(PATH)
JOBS ?= $(shell nproc)

.PHONY: all setup data build build-asan build-fuzz test unit demo clean

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

# The libFuzzer targets (clang; CPU-only): CI replays their seed corpora (label fuzz); fuzzing
# itself is run by hand (tests/fuzz/CMakeLists.txt says how).
FUZZ_TARGETS = fuzz_csv fuzz_tokenizer fuzz_safetensors fuzz_gcs_json
build-fuzz: setup
	cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang -DKUBEFIT_FUZZ=ON -DKUBEFIT_CUDA=OFF $(CMAKE_ARGS) >/dev/null
	cmake --build build-fuzz -j $(JOBS) --target $(FUZZ_TARGETS)

# Every label: unit under sanitizers, the fuzz seed replays with libFuzzer, the rest (reference,
# storage, apiserver, gpu) in release, then e2e: images built from the Dockerfiles, run on a
# one-machine cluster (hack/dev-cluster; docs/e2e.md). Its scenarios mostly wait on the cluster, so
# they run E2E_JOBS at a time (the controller-restart one alone).
E2E_JOBS ?= 3
test: build build-asan build-fuzz data
	ctest --test-dir build-asan -L unit --output-on-failure -j $(JOBS)
	ctest --test-dir build-fuzz -L fuzz --output-on-failure
	ctest --test-dir build -LE 'unit|e2e' --output-on-failure
	ctest --test-dir build -L e2e --output-on-failure -j $(E2E_JOBS)

# The newcomer's path: only what the demo needs - the Debian packages of the build, the kubefit
# and kubefit-trainer targets (CPU only: the demo trains on the CPU, and a GPU machine's CUDA build
# is make build's), the data set - then hack/demo (kubefit run -f examples/trainingjob-demo.yaml).
# Its own build folder, so that build/ keeps make test's configuration. make test still sets up and
# builds everything.
DEMO_BUILD ?= build-demo
export DEMO_BUILD
demo:
	KUBEFIT_SETUP_ONLY=apt KUBEFIT_APT_MINIMAL=1 hack/setup
	@test -f $(DEMO_BUILD)/CMakeCache.txt || cmake -S . -B $(DEMO_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release -DKUBEFIT_CUDA=OFF $(CMAKE_ARGS) >/dev/null
	cmake --build $(DEMO_BUILD) -j $(JOBS) --target kubefit kubefit-trainer
	hack/make-datasets
	hack/demo

clean:
	rm -rf build build-asan build-fuzz build-demo
