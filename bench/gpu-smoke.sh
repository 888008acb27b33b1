#!/usr/bin/env bash
# bench/gpu-smoke.sh: build the CUDA backend (Release) and run the GPU smoke test on this machine.
# Needs a CUDA toolkit (cmake/Cuda.cmake finds it) and a GPU with its driver; prints the test's
# output (device, SGEMM checks, SGEMM rate) and exits with its status (77 = no GPU here).
#   BUILD_DIR   build folder (default build-gpu)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build-gpu}
gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
cfg=$(cmake -S "$root" -B "$build" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DKUBEFIT_CUDA=ON)
grep 'kubefit:' <<<"$cfg" >&2 || true
if ! grep -q 'building the CUDA backend' <<<"$cfg"; then
  echo "gpu-smoke: no usable CUDA toolkit, the build is CPU-only (see the kubefit: line above)" >&2
  exit 1
fi
cmake --build "$build" -j "$(nproc)" --target test_gpu_smoke
exec "$build/tests/gpu/test_gpu_smoke"
