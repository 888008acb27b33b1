#!/usr/bin/env bash
# charts/kubefit: `helm lint --strict` and `helm template` render what the controller needs:
# Deployment (leader election flag, up to 2 replicas), ServiceAccount, least-privilege RBAC,
# Service, and the CRD; values.schema.json refuses bad values. Skips (77) without helm, except
# under CI=true where a missing helm is a failure.
set -euo pipefail
root=${KUBEFIT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
tools=${KUBEFIT_TOOLS:-$HOME/.cache/kubefit}
helm=$tools/bin/helm
py=$tools/venv-torch/bin/python
chart=$root/charts/kubefit
for tool in "$helm" "$py"; do
  if [ ! -x "$tool" ]; then
    if [ "${CI:-}" = true ]; then echo "FAIL: $tool missing (hack/setup builds it)" >&2; exit 1; fi
    echo "SKIP: $tool missing (run hack/setup)" >&2; exit 77
  fi
done
export HELM_CACHE_HOME=$(mktemp -d) HELM_CONFIG_HOME=$(mktemp -d) HELM_DATA_HOME=$(mktemp -d)
trap 'rm -rf "$HELM_CACHE_HOME" "$HELM_CONFIG_HOME" "$HELM_DATA_HOME"' EXIT
# The helm built by hack/setup assumes Kubernetes 1.20 unless told; the chart needs >= 1.29.
kv=(--kube-version 1.37.2)
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

"$helm" lint --strict "$chart" "${kv[@]}" >/dev/null || fail "helm lint --strict: $("$helm" lint --strict "$chart" "${kv[@]}" 2>&1 | tail -5)"
"$helm" lint --strict "$chart" "${kv[@]}" --set replicaCount=2 >/dev/null || fail "helm lint with replicaCount=2"

render() { "$helm" template kf "$chart" "${kv[@]}" --namespace kubefit-system --include-crds "$@"; }
out=$(render --set replicaCount=2)

# Structure and RBAC checked on the parsed objects.
"$py" "$root/tests/crd/check_chart.py" "$root" <<<"$out" || failures=$((failures + 1))

# Optional objects: the ServiceMonitor and the Grafana dashboard; the console turned off.
"$py" "$root/tests/crd/check_chart.py" "$root" --extras \
  <<<"$(render --set serviceMonitor.enabled=true --set grafanaDashboard.enabled=true --set console.enabled=false)" ||
  failures=$((failures + 1))

# Bad values are refused with a message naming them.
expect_fail() {
  local want=$1; shift
  local msg
  if msg=$(render "$@" 2>&1 >/dev/null); then fail "helm template $* was accepted"
  elif [[ "$msg" != *"$want"* ]]; then fail "helm template $*: expected '$want' in: $msg"; fi
}
expect_fail "/leaderElection/enabled" --set replicaCount=2 --set leaderElection.enabled=false
expect_fail "replicaCount" --set replicaCount=3
expect_fail "logLevel" --set logLevel=verbose
expect_fail "service" --set service.port=0
expect_fail "additional properties" --set imageTag=x
expect_fail "progress" --set progress.rate=0
expect_fail "console" --set console.anonymous=yes
expect_fail "serviceMonitor" --set serviceMonitor.interval=often
# Without leader election (one replica) the Role is not rendered and the flag says false.
one=$(render --set leaderElection.enabled=false)
grep -q -- '--leader-elect=false' <<<"$one" || fail "leaderElection.enabled=false does not reach the flag"
! grep -q 'kind: Role$' <<<"$one" || fail "leader-election Role rendered without leader election"

# Without serving the controller gets no rights on Deployments and Services, and the flag says so.
nosrv=$(render --set serving.enabled=false)
grep -q -- '--serving=false' <<<"$nosrv" || fail "serving.enabled=false does not reach the flag"
! grep -Eq 'resources: \[(deployments|services)\]' <<<"$nosrv" || fail "Deployment/Service rights rendered without serving"
expect_fail "serving" --set serving.enabled=maybe

[ "$failures" -eq 0 ] && echo "ok: helm lint + template, RBAC, values schema" && exit 0
echo "$failures failures" >&2
exit 1
