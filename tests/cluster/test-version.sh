#!/usr/bin/env bash
# Run under with-apiserver: /version reports exactly the kube-apiserver version that
# hack/setup.d/40-go-tools.sh pins (and hack/go/kube-apiserver/go.mod requires); the kubelet,
# kube-proxy, kube-scheduler and kube-controller-manager (hack/go/kube-node) say the same.
set -euo pipefail
fail() { echo "FAIL: $*" >&2; exit 1; }
root=${KUBEFIT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
pinned=$(sed -n 's/^KUBE_VERSION=\(v[0-9.]*\).*/\1/p' "$root/hack/setup.d/40-go-tools.sh")
[ -n "$pinned" ] || fail "no KUBE_VERSION= line in hack/setup.d/40-go-tools.sh"
for mod in kube-apiserver kube-node; do
  grep -Eq "^(require)?[[:space:]]*k8s.io/kubernetes $pinned( |$)" "$root/hack/go/$mod/go.mod" ||
    fail "hack/go/$mod/go.mod does not require k8s.io/kubernetes $pinned"
done
# The dev cluster's components (hack/go/kube-node) report the same version.
bin=${KUBEFIT_TOOLS:-$HOME/.cache/kubefit}/bin
for tool in kubelet kube-proxy kube-scheduler kube-controller-manager; do
  v=$("$bin/$tool" --version 2>&1) || fail "$bin/$tool --version failed: $v"
  [ "$v" = "Kubernetes $pinned" ] || fail "$tool --version: expected 'Kubernetes $pinned', got '$v'"
done
raw=$(kubectl --kubeconfig "$KUBECONFIG" --request-timeout 20s get --raw /version)
got=$(printf '%s' "$raw" | python3 -c 'import json,sys; print(json.load(sys.stdin)["gitVersion"])')
[ "$got" = "$pinned" ] || fail "/version gitVersion: expected $pinned, got '$got' ($raw)"
minor=$(printf '%s' "$raw" | python3 -c 'import json,sys; print(json.load(sys.stdin)["minor"])')
want_minor=${pinned#v*.}; want_minor=${want_minor%%.*}
[ "$minor" = "$want_minor" ] || fail "/version minor: expected $want_minor, got '$minor'"
echo "ok: /version gitVersion $got; kubelet, kube-proxy, kube-scheduler, kube-controller-manager $pinned"
