# Sourced by the tests/cluster/ scripts: finding tools, free ports, starting/stopping servers.
# Every server runs with its state, logs and pid file under one DIR, so `pgrep -f DIR` finds it.
KUBEFIT_TOOLS=${KUBEFIT_TOOLS:-$HOME/.cache/kubefit}
CLUSTER_BIN=${CLUSTER_BIN:-$KUBEFIT_TOOLS/bin}
STOP_GRACE_S=${STOP_GRACE_S:-5}     # seconds between TERM and KILL
READY_TIMEOUT_S=${READY_TIMEOUT_S:-90}

cl_say() { echo "tests/cluster/$(basename "$0"): $*" >&2; }
cl_die() { cl_say "error: $*"; exit 1; }

# cl_need_bin NAME...: fail (or skip with 77 when KUBEFIT_ALLOW_SKIP=1) if a tool is missing.
cl_need_bin() {
  local b
  for b in "$@"; do
    [ -x "$CLUSTER_BIN/$b" ] && continue
    if [ "${KUBEFIT_ALLOW_SKIP:-0}" = 1 ]; then
      cl_say "skip: $CLUSTER_BIN/$b is missing (build it with hack/setup)"
      exit 77
    fi
    cl_die "$CLUSTER_BIN/$b is missing: run hack/setup (step go-tools) or set KUBEFIT_ALLOW_SKIP=1 to skip"
  done
}

# cl_dir DIR: the absolute path of DIR, created if missing.
cl_dir() {
  [ -n "${1:-}" ] || cl_die "usage: $(basename "$0") DIR"
  mkdir -p "$1" && (cd "$1" && pwd)
}

# cl_free_ports [N]: N distinct loopback TCP ports nobody listens on now (the kernel picks them,
# all held open together so none repeats), one per line.
cl_free_ports() {
  python3 -c '
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks: s.bind(("127.0.0.1", 0))
print("\n".join(str(s.getsockname()[1]) for s in socks))' "${1:-1}"
}

# cl_running PID: true while the process runs. An orphan that exited stays a zombie until PID 1
# reaps it (seconds on some machines) and kill -0 still succeeds on it: that counts as exited.
cl_running() {
  local stat
  kill -0 "$1" 2>/dev/null || return 1
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

# cl_alive PIDFILE: true when the pid file names a running process.
cl_alive() {
  local pid
  [ -f "$1" ] && pid=$(cat "$1") && [ -n "$pid" ] && cl_running "$pid"
}

# cl_stop PIDFILE NAME: TERM, KILL after STOP_GRACE_S, wait until the process is gone.
cl_stop() {
  local pidf=$1 name=$2 pid i
  [ -f "$pidf" ] || return 0
  pid=$(cat "$pidf")
  if [ -n "$pid" ] && cl_running "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < STOP_GRACE_S * 10; i++)); do
      cl_running "$pid" || break
      sleep 0.1
    done
    if cl_running "$pid"; then
      cl_say "$name (pid $pid) still running after ${STOP_GRACE_S}s: KILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    # Not our child (started by another script), so poll instead of `wait`.
    for ((i = 0; i < 100; i++)); do
      cl_running "$pid" || break
      sleep 0.1
    done
    cl_running "$pid" && cl_die "$name (pid $pid) did not exit"
  fi
  rm -f "$pidf"
}

# cl_start PIDFILE LOG CMD ARGS...: start CMD in the background, stdin closed, appending to LOG
# (never to our stdout: ctest waits for it to close); records its pid. It stays in the caller's
# process group, so a test runner that kills the group on timeout takes the servers too.
cl_start() {
  local pidf=$1 log=$2; shift 2
  "$@" </dev/null >>"$log" 2>&1 &
  echo $! >"$pidf"
}

# cl_wait_ready NAME PIDFILE LOG CMD...: poll CMD (quietly) until it succeeds; fail with the log
# tail if the process dies or READY_TIMEOUT_S passes.
cl_wait_ready() {
  local name=$1 pidf=$2 log=$3; shift 3
  local deadline=$(($(date +%s) + READY_TIMEOUT_S))
  while ! "$@" >/dev/null 2>&1; do
    if ! cl_alive "$pidf"; then
      cl_say "error: $name exited during startup; last lines of $log:"
      tail -n 40 "$log" >&2
      return 1
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      cl_say "error: $name not ready after ${READY_TIMEOUT_S}s; last lines of $log:"
      tail -n 40 "$log" >&2
      return 1
    fi
    sleep 0.2
  done
}

# cl_env_get DIR/env NAME: the value one export line of an env file sets.
cl_env_get() {
  (set +u; source "$1" && eval "printf '%s' \"\${$2}\"")
}
