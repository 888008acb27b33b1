#!/usr/bin/env bash
# The CUDA 13.0 toolchain (nvcc, crt, nvvm, cudart, cccl, cuBLAS) from PyPI wheels, in its own venv.
# 13.0.x so the binaries run on an NVIDIA driver 580 machine. cmake/Cuda.cmake finds it under
# venv-cuda/lib/python3.*/site-packages/nvidia/cu13 (see docs/gpu.md).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
venv="$KUBEFIT_TOOLS/venv-cuda"
pins="nvidia-cuda-nvcc==13.0.88 nvidia-cuda-crt==13.0.88 nvidia-nvvm==13.0.88 nvidia-cuda-runtime==13.0.96 nvidia-cuda-cccl==13.0.85 nvidia-cublas==13.0.2.14"
key="$pins links=2"
stamp_ok cuda "$key" && exit 0
installed=$(cat "$KUBEFIT_TOOLS/stamps/cuda" 2>/dev/null || true)
if [[ "$installed" != "$pins"* ]]; then
  say "cuda: installing the CUDA 13.0 toolchain wheels into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check $pins
fi
# The wheels ship only versioned libraries (libcudart.so.13); linkers and FindCUDAToolkit look
# for the development names (libcudart.so), which a toolkit install has as symlinks.
# nvcc.profile links from TOP/lib64; the wheels put the libraries in lib/.
shopt -s nullglob
for top in "$venv"/lib/python3.*/site-packages/nvidia/cu13; do
  [ -e "$top/lib64" ] || ln -s lib "$top/lib64"
done
for lib in "$venv"/lib/python3.*/site-packages/nvidia/cu13/lib/lib*.so.[0-9]*; do
  dev=${lib%.so.*}.so
  [ -e "$dev" ] || ln -s "$(basename "$lib")" "$dev"
done
stamp_set cuda "$key"
