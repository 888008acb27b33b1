#!/usr/bin/env bash
# The CUDA 13.0 toolchain (nvcc, crt, nvvm, cudart, cccl, cuBLAS) from PyPI wheels, in its own venv.
# 13.0.x so the binaries run on an NVIDIA driver 580 machine. CMake finds it via hack/cuda-root.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
venv="$KUBEFIT_TOOLS/venv-cuda"
pins="nvidia-cuda-nvcc==13.0.88 nvidia-cuda-crt==13.0.88 nvidia-nvvm==13.0.88 nvidia-cuda-runtime==13.0.96 nvidia-cuda-cccl==13.0.85 nvidia-cublas==13.0.2.14"
stamp_ok cuda "$pins" && exit 0
say "cuda: installing the CUDA 13.0 toolchain wheels into $venv"
python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check $pins
stamp_set cuda "$pins"
