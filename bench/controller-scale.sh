#!/usr/bin/env bash
# bench/controller-scale.sh: kubefit-controller against the Kubernetes Job controller on N objects
# (default 1000; N=10000 bench/controller-scale.sh for the large run). Each side gets a fresh
# harness kube-apiserver; see bench/controller_scale.py for what is measured. Builds what it needs
# (Release) unless KUBEFIT_BUILD points at a build tree. Last lines:
#   scale_ratio_vs_job_controller=<Job controller's time to all Pods / kubefit's>
#   controller_rss_mb=<kubefit's peak RSS>
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tools=${KUBEFIT_TOOLS:-$HOME/.cache/kubefit}
export PATH=$tools/bin:$PATH
build=${KUBEFIT_BUILD:-$root/build}
for bin in kube-apiserver etcd kube-controller-manager; do
  command -v "$bin" >/dev/null || { echo "controller-scale: $bin not found: run hack/setup" >&2; exit 1; }
done
if [ -z "${KUBEFIT_BUILD:-}" ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" --target kubefit-controller render_pod >/dev/null
fi
echo "machine: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); kube-controller-manager $(kube-controller-manager --version 2>/dev/null | awk '{print $2}')"
exec python3 "$root/bench/controller_scale.py" --n "${N:-1000}" --qps "${QPS:-1000}" \
  --kubefit "$build/controller/kubefit-controller" --kcm "$(command -v kube-controller-manager)" \
  --render-pod "$build/tests/contract/render_pod" "$@"
