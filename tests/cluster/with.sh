# Sourced by with-apiserver / with-gcs: up in a temp DIR, source DIR/env, run CMD, down.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# cl_with NAME UP_SCRIPT DOWN_SCRIPT CMD ARGS...: exits with CMD's status. KEEP=1 keeps DIR.
cl_with() {
  local name=$1 up=$2 down=$3; shift 3
  [ $# -gt 0 ] || cl_die "usage: $(basename "$0") CMD [ARGS...]"
  local here; here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  WITH_DIR=$(mktemp -d "${TMPDIR:-/tmp}/kubefit-$name.XXXXXX")
  WITH_DOWN="$here/$down"
  WITH_PID=
  trap cl_with_cleanup EXIT
  trap 'cl_with_signal 130' INT
  trap 'cl_with_signal 143' TERM
  cl_with_watchdog
  local rc=0
  # Children in the background, their pids in DIR, so the watchdog can stop them too.
  "$here/$up" "$WITH_DIR" &
  WITH_PID=$!
  echo "$WITH_PID" >"$WITH_DIR/.up.pid"
  wait "$WITH_PID" || rc=$?
  rm -f "$WITH_DIR/.up.pid"   # a stale pid may be reused by someone else: never signal it
  WITH_PID=
  if [ $rc != 0 ]; then
    [ $rc = 77 ] || cl_say "error: $up failed (exit $rc)"
    exit $rc
  fi
  set -a
  # shellcheck disable=SC1091
  source "$WITH_DIR/env"
  set +a
  # In the background so that a signal reaches our trap while CMD runs; stdin stays ours.
  "$@" 0<&0 &
  WITH_PID=$!
  echo "$WITH_PID" >"$WITH_DIR/.cmd.pid"
  wait "$WITH_PID" || rc=$?
  rm -f "$WITH_DIR/.cmd.pid"
  WITH_PID=
  exit $rc
}

# cl_with_watchdog: a test runner that times out kills this script and its descendants (ctest
# does, with SIGKILL: no trap runs), but not the servers, which the up script left to init. So a
# small process, itself detached from us (double fork), polls for our death and then stops CMD,
# the up script and the servers, and removes DIR: nothing outlives the test.
cl_with_watchdog() {
  local parent=$$
  ( (
    set +e
    trap '' INT
    echo "$BASHPID" >"$WITH_DIR/.watchdog.pid"
    while cl_running "$parent"; do sleep 0.5; done
    [ -d "$WITH_DIR" ] || exit 0          # the wrapper cleaned up itself
    for f in "$WITH_DIR/.up.pid" "$WITH_DIR/.cmd.pid"; do
      [ -f "$f" ] && kill -TERM "$(cat "$f")" 2>/dev/null || true
    done
    sleep 1
    "$WITH_DOWN" "$WITH_DIR"
    [ "${KEEP:-0}" = 1 ] || rm -rf "$WITH_DIR"
  ) </dev/null >/dev/null 2>&1 & )
}

cl_with_signal() {
  if [ -n "${WITH_PID:-}" ]; then kill -TERM "$WITH_PID" 2>/dev/null || true; wait "$WITH_PID" 2>/dev/null || true; fi
  exit "$1"
}

cl_with_cleanup() {
  local rc=$? f
  trap - EXIT INT TERM
  [ -f "$WITH_DIR/.watchdog.pid" ] && kill -TERM "$(cat "$WITH_DIR/.watchdog.pid")" 2>/dev/null || true
  rm -f "$WITH_DIR/.watchdog.pid"
  "$WITH_DOWN" "$WITH_DIR" || rc=1
  if [ $rc != 0 ] && [ $rc != 77 ]; then
    for f in "$WITH_DIR"/*.log; do
      [ -s "$f" ] || continue
      cl_say "last lines of $f:"
      tail -n 20 "$f" >&2
    done
  fi
  if [ "${KEEP:-0}" = 1 ]; then
    cl_say "KEEP=1: kept $WITH_DIR"
  else
    rm -rf "$WITH_DIR"
  fi
  exit $rc
}
