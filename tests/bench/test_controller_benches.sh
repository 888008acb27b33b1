#!/usr/bin/env bash
# bench_controller_tiny: bench/controller-scale.sh (N=25, both sides) and bench/crd-write-cost.sh
# (N=5) end to end at CI size, so that they cannot rot: every row and the last lines are there, no
# duplicate or missing Pod. The numbers at this size mean nothing; docs/controller.md has the real ones.
set -uo pipefail
src=${KUBEFIT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${KUBEFIT_BINARY_DIR:-$src/build}
export PATH=${KUBEFIT_TOOLS:-$HOME/.cache/kubefit}/bin:$PATH
skip() { if [ "${CI:-}" = true ]; then echo "FAIL: $1 under CI=true"; exit 1; fi; echo "SKIP: $1"; exit 77; }
command -v kube-controller-manager >/dev/null || skip "kube-controller-manager missing (hack/setup)"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { if eval "$1"; then pass=$((pass + 1)); else echo "FAIL: $2"; fail=$((fail + 1)); fi; }
N=25 KUBEFIT_BUILD=$bin "$src/bench/controller-scale.sh" --timeout 240 > "$tmp/scale" 2>&1
rc=$?
cat "$tmp/scale"
ok "[ $rc = 0 ]" "controller-scale.sh exit $rc"
for row in pods_s settled_s complete_s ctl_cpu_s ctl_rss_mb apiserver_cpu_s requests_per_object; do
  ok "grep -Eq '^$row +[0-9.]+ +[0-9.]+$' $tmp/scale" "a $row row for both sides"
done
ok "tail -2 $tmp/scale | head -1 | grep -Eq '^scale_ratio_vs_job_controller=[0-9.]+$'" "scale_ratio_vs_job_controller last but one"
ok "tail -1 $tmp/scale | grep -Eq '^controller_rss_mb=[0-9.]+$'" "controller_rss_mb last"
ok "grep -c '\"duplicate_pods\": 0, \"missing_pods\": 0' $tmp/scale | grep -qx 2" "every object has one Pod on both sides"
N=5 KUBEFIT_BUILD=$bin "$src/bench/crd-write-cost.sh" > "$tmp/cost" 2>&1
rc=$?
cat "$tmp/cost"
ok "[ $rc = 0 ]" "crd-write-cost.sh exit $rc"
ok "[ \$(grep -Ec ' [0-9]+ bytes +[0-9.]+ ms of apiserver CPU per write$' $tmp/cost) = 14 ]" "seven kinds of write, two rounds"
echo "bench_controller_tiny: $pass passed, $fail failed"
[ "$fail" = 0 ]
