#!/usr/bin/env bash
# Run under with-apiserver: kubectl, with the harness's kubeconfig only, writes a ConfigMap with
# random content and reads it back; the kubeconfig user may do anything (system:masters) and an
# unknown token is refused.
set -euo pipefail
fail() { echo "FAIL: $*" >&2; exit 1; }
: "${KUBECONFIG:?run under tests/cluster/with-apiserver}"
kc=(kubectl --kubeconfig "$KUBECONFIG" --request-timeout 20s)
name=cm-$RANDOM-$RANDOM
value=$(openssl rand -hex 16)
"${kc[@]}" create configmap "$name" --from-literal "key=$value" >/dev/null
got=$("${kc[@]}" get configmap "$name" -o 'jsonpath={.data.key}')
[ "$got" = "$value" ] || fail "configmap $name: expected data.key=$value, got '$got'"
ns=$("${kc[@]}" get configmap "$name" -o 'jsonpath={.metadata.namespace}')
[ "$ns" = default ] || fail "expected namespace default, got '$ns'"
can=$("${kc[@]}" auth can-i '*' '*' --all-namespaces)
[ "$can" = yes ] || fail "admin user should be allowed everything, kubectl auth can-i says '$can'"
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$KUBE_CA_FILE" \
  -H "Authorization: Bearer not-$KUBE_TOKEN" "$KUBE_APISERVER_URL/api/v1/namespaces")
[ "$code" = 401 ] || fail "an unknown token should get 401, got $code"
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$KUBE_CA_FILE" \
  -H "Authorization: Bearer $KUBE_TOKEN" "$KUBE_APISERVER_URL/api/v1/namespaces/default/configmaps/$name")
[ "$code" = 200 ] || fail "token + CA from env should read the configmap, got HTTP $code"
"${kc[@]}" delete configmap "$name" >/dev/null
echo "ok: configmap $name round trip, RBAC admin, 401 for a bad token"
