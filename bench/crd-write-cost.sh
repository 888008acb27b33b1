#!/usr/bin/env bash
# bench/crd-write-cost.sh: what one write costs the kube-apiserver - kubefit's TrainingJob status
# patch (as the controller writes it for a new run, and slimmer variants) against a Pod create and
# a Job status patch - on a fresh harness apiserver (bench/crd_write_cost.py says how). N (500)
# writes of each kind. Builds what it needs (Release) unless KUBEFIT_BUILD points at a build tree.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export PATH=${KUBEFIT_TOOLS:-$HOME/.cache/kubefit}/bin:$PATH
build=${KUBEFIT_BUILD:-$root/build}
if [ -z "${KUBEFIT_BUILD:-}" ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" --target kubefit-controller render_pod >/dev/null
fi
dir=$(mktemp -d)
trap '[ -n "${ctl:-}" ] && kill "$ctl" 2>/dev/null; "$root/tests/cluster/apiserver-down" "$dir" >/dev/null 2>&1; rm -rf "$dir"' EXIT
"$root/tests/cluster/apiserver-up" "$dir" >/dev/null
# shellcheck disable=SC1091
source "$dir/env"
kubectl apply -f "$root/crds/trainingjob.yaml" >/dev/null
"$root/tests/cluster/crd-established" trainingjobs.kubefit.dev 60 >/dev/null
# The status sample: what the controller writes when it creates a run's Pod.
kubectl create namespace sample >/dev/null
kubectl apply -n sample -f - >/dev/null <<'YAML'
apiVersion: kubefit.dev/v1alpha1
kind: TrainingJob
metadata: {name: sample}
spec: {language: en, epochs: 1, storage: {bucket: "gs://bench-bucket"}, resources: {gpus: 0}}
YAML
"$build/controller/kubefit-controller" --kubeconfig "$KUBECONFIG" --listen 127.0.0.1:0 --leader-elect=false \
  >"$dir/controller.log" 2>&1 & ctl=$!
for _ in $(seq 100); do
  [ -n "$(kubectl get trainingjob -n sample sample -o 'jsonpath={.status.podName}')" ] && break
  sleep 0.1
done
kill "$ctl"; wait "$ctl" 2>/dev/null || true; ctl=""
kubectl get trainingjob -n sample sample -o 'jsonpath={.status}' >"$dir/status.json"
[ -s "$dir/status.json" ] || { echo "crd-write-cost: the controller wrote no status" >&2; exit 1; }
echo "machine: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); kube-apiserver $(kube-apiserver --version | awk '{print $2}')"
PYTHONPATH=$root/bench python3 "$root/bench/crd_write_cost.py" "$dir" --n "${N:-500}" --status "$dir/status.json" \
  --render-pod "$build/tests/contract/render_pod"
