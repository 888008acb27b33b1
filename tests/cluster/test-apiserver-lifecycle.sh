#!/usr/bin/env bash
# The apiserver harness end to end: with-apiserver passes CMD's exit code through; inside, etcd
# and kube-apiserver of the DIR run; etcd-compact compacts etcd, so a watch from an older
# resourceVersion answers 410 (run with KUBE_APISERVER_EXTRA_ARGS=--watch-cache=false, which
# must survive a restart); data survives apiserver-restart and apiserver-stop/start on the same
# etcd; afterwards no process whose command line names the DIR is left and the DIR is removed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"                     # cl_running: a reaped-late zombie counts as gone
fail() { echo "FAIL: $*" >&2; exit 1; }
count_procs() { pgrep -f -- "$1" | wc -l; }

if [ "${1:-}" = inner ]; then            # runs under with-apiserver
  echo "$KUBE_CLUSTER_DIR" >"$2"
  [ "$(count_procs "$KUBE_CLUSTER_DIR/")" -ge 2 ] || fail "expected etcd + kube-apiserver running"
  kc=(kubectl --kubeconfig "$KUBECONFIG" --request-timeout 20s)
  watch_from() {
    curl -sS --max-time 10 --cacert "$KUBE_CA_FILE" -H "Authorization: Bearer $KUBE_TOKEN" \
      "$KUBE_APISERVER_URL/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=$1&timeoutSeconds=2" || true
  }
  "${kc[@]}" create configmap before-restart --from-literal k=v1 >/dev/null
  rv=$("${kc[@]}" get configmap before-restart -o 'jsonpath={.metadata.resourceVersion}')
  "${kc[@]}" patch configmap before-restart -p '{"data":{"k":"v2"}}' >/dev/null
  "${kc[@]}" patch configmap before-restart -p '{"data":{"k":"v3"}}' >/dev/null
  out=$(watch_from "$rv")
  case $out in *'"type":"MODIFIED"'*) ;; *) fail "watch from $rv before compaction: ${out:0:300}" ;; esac
  rev=$("$here/etcd-compact" "$KUBE_CLUSTER_DIR")
  [ "$rev" -gt "$rv" ] || fail "compaction revision $rev should be past resourceVersion $rv"
  out=$(curl -sS -X POST "$ETCD_ENDPOINT/v3/kv/range" -d "{\"key\":\"AA==\",\"revision\":\"$rv\"}")
  case $out in *compacted*) ;; *) fail "etcd read at revision $rv after compaction: $out" ;; esac
  # This run has --watch-cache=false (see below), so the watch goes to etcd: 410 Expired.
  out=$(watch_from "$rv")
  case $out in
    *'"code":410'*) ;;
    *) fail "watch from compacted resourceVersion $rv: expected 410, got: ${out:0:300}" ;;
  esac
  old_pid=$(cat "$KUBE_APISERVER_PID_FILE")
  "$here/apiserver-restart" "$KUBE_CLUSTER_DIR"
  new_pid=$(cat "$KUBE_APISERVER_PID_FILE")
  [ "$new_pid" != "$old_pid" ] || fail "apiserver-restart did not start a new process"
  cl_running "$old_pid" && fail "old kube-apiserver (pid $old_pid) still running"
  tr '\0' ' ' <"/proc/$new_pid/cmdline" | grep -q -- "--watch-cache=false" ||
    fail "KUBE_APISERVER_EXTRA_ARGS not passed on restart"
  got=$("${kc[@]}" get configmap before-restart -o 'jsonpath={.data.k}')
  [ "$got" = v3 ] || fail "after restart: expected k=v3, got '$got'"
  "$here/apiserver-stop" "$KUBE_CLUSTER_DIR"
  cl_running "$new_pid" && fail "kube-apiserver (pid $new_pid) still running after apiserver-stop"
  cl_running "$(cat "$ETCD_PID_FILE")" || fail "etcd should keep running after apiserver-stop"
  "$here/apiserver-start" "$KUBE_CLUSTER_DIR"
  got=$("${kc[@]}" get configmap before-restart -o 'jsonpath={.data.k}')
  [ "$got" = v3 ] || fail "after stop/start: expected k=v3, got '$got'"
  echo "inner: ok"
  exit 42                                  # with-apiserver must hand this back
fi

mark=$(mktemp)
trap 'rm -f "$mark"' EXIT
rc=0
KUBE_APISERVER_EXTRA_ARGS=--watch-cache=false "$here/with-apiserver" "$0" inner "$mark" || rc=$?
[ "$rc" = 42 ] || fail "with-apiserver returned $rc, expected CMD's exit code 42"
dir=$(cat "$mark")
[ -n "$dir" ] || fail "inner part did not run"
left=$(pgrep -af -- "$dir/" || true)
[ -z "$left" ] || fail "processes left after with-apiserver: $left"
[ ! -e "$dir" ] || fail "$dir was not removed"
echo "ok: restart, compaction -> 410, exit code passed through, nothing left behind"
