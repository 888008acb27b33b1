#!/usr/bin/env bash
# PyTorch (pinned) and fastai for the reference tests and the benchmarks, in a venv of their own
# so PyTorch's CUDA libraries never meet the pinned toolchain in venv-cuda.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
venv="$KUBEFIT_TOOLS/venv-torch"
req="$KUBEFIT_ROOT/hack/requirements-torch.txt"
key=$(hash_of "$req")
stamp_ok torch "$key" && exit 0
say "python: installing PyTorch + fastai into $venv (first time: several minutes)"
python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check -r "$req"
stamp_set torch "$key"
