#!/usr/bin/env bash
# Without the servers' binaries the wrappers fail loudly (exit 1, naming the missing binary)
# unless KUBEFIT_ALLOW_SKIP=1, when they exit 77 (ctest: skipped). CMD never runs either way.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
fail() { echo "FAIL: $*" >&2; exit 1; }
empty=$(mktemp -d); trap 'rm -rf "$empty"' EXIT
for w in with-apiserver with-gcs; do
  rc=0
  out=$(CLUSTER_BIN=$empty KUBEFIT_ALLOW_SKIP=0 "$here/$w" touch "$empty/ran" 2>&1) || rc=$?
  [ "$rc" = 1 ] || fail "$w without binaries: expected exit 1, got $rc ($out)"
  case $out in *"$empty/"*missing*) ;; *) fail "$w: message should name the missing binary: $out" ;; esac
  rc=0
  CLUSTER_BIN=$empty KUBEFIT_ALLOW_SKIP=1 "$here/$w" touch "$empty/ran" 2>/dev/null || rc=$?
  [ "$rc" = 77 ] || fail "$w with KUBEFIT_ALLOW_SKIP=1: expected 77, got $rc"
  [ ! -e "$empty/ran" ] || fail "$w ran CMD without its server"
done
echo "ok: missing binaries fail (exit 1) or skip (77) only when allowed"
