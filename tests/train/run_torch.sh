#!/usr/bin/env bash
# run_torch.sh SCRIPT ARGS...: runs SCRIPT with venv-torch's python. Missing venv: skip (77),
# or fail under CI=true.
py="${KUBEFIT_TOOLS:-$HOME/.cache/kubefit}/venv-torch/bin/python"
if [ ! -x "$py" ]; then
  if [ "${CI:-}" = true ]; then echo "FAIL: $py missing under CI=true"; exit 1; fi
  echo "SKIP: $py missing (run hack/setup)"; exit 77
fi
exec "$py" "$@"
