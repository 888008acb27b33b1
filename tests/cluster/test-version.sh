#!/usr/bin/env bash
# Run under with-apiserver: /version reports exactly the kube-apiserver version that
# hack/setup.d/40-go-tools.sh pins (and hack/go/kube-apiserver/go.mod requires).
set -euo pipefail
fail() { echo "FAIL: $*" >&2; exit 1; }
root=${KUBEFIT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
pinned=$(sed -n 's/^KUBE_VERSION=\(v[0-9.]*\).*/\1/p' "$root/hack/setup.d/40-go-tools.sh")
[ -n "$pinned" ] || fail "no KUBE_VERSION= line in hack/setup.d/40-go-tools.sh"
grep -Eq "^(require)?[[:space:]]*k8s.io/kubernetes $pinned( |$)" "$root/hack/go/kube-apiserver/go.mod" ||
  fail "hack/go/kube-apiserver/go.mod does not require k8s.io/kubernetes $pinned"
raw=$(kubectl --kubeconfig "$KUBECONFIG" --request-timeout 20s get --raw /version)
got=$(printf '%s' "$raw" | python3 -c 'import json,sys; print(json.load(sys.stdin)["gitVersion"])')
[ "$got" = "$pinned" ] || fail "/version gitVersion: expected $pinned, got '$got' ($raw)"
minor=$(printf '%s' "$raw" | python3 -c 'import json,sys; print(json.load(sys.stdin)["minor"])')
want_minor=${pinned#v*.}; want_minor=${want_minor%%.*}
[ "$minor" = "$want_minor" ] || fail "/version minor: expected $want_minor, got '$minor'"
echo "ok: /version gitVersion $got"
