# Sourced by gcs-*: fake-gcs-server over plain HTTP on a loopback port, data under DIR/data
# (filesystem backend, so objects survive a restart on the same port). Resumable-upload sessions
# live in the server's memory: after a restart an old session URI answers 404.
#   DIR/gcs.log, DIR/gcs.pid, DIR/env
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

gcs_load_env() {
  [ -f "$1/env" ] || cl_die "$1/env not found: run gcs-up $1 first"
  # shellcheck disable=SC1091
  source "$1/env"
}

gcs_ready() { curl -sf --max-time 2 "$STORAGE_EMULATOR_HOST/storage/v1/b?project=test" >/dev/null; }

# gcs_start DIR: start fake-gcs-server from DIR/env and wait until the JSON API answers.
gcs_start() {
  local dir=$1 port=${STORAGE_EMULATOR_HOST##*:}
  cl_alive "$GCS_PID_FILE" && cl_die "fake-gcs-server of $dir is already running"
  cl_start "$GCS_PID_FILE" "$GCS_LOG" "$CLUSTER_BIN/fake-gcs-server" -scheme http -host 127.0.0.1 \
    -port "$port" -backend filesystem -filesystem-root "$dir/data" \
    -external-url "$STORAGE_EMULATOR_HOST" -public-host "127.0.0.1:$port" -log-level info
  cl_wait_ready fake-gcs-server "$GCS_PID_FILE" "$GCS_LOG" gcs_ready
}

# gcs_create_bucket NAME: create a bucket through the JSON API (an existing one is fine).
gcs_create_bucket() {
  local code
  code=$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' -X POST \
    -H 'Content-Type: application/json' -d "{\"name\":\"$1\"}" \
    "$STORAGE_EMULATOR_HOST/storage/v1/b?project=test")
  [ "$code" = 200 ] || [ "$code" = 409 ] || cl_die "creating bucket $1: HTTP $code"
}

gcs_up() {
  local dir try port b
  dir=$(cl_dir "${1:-}") || exit 1
  shift || true
  cl_need_bin fake-gcs-server
  if [ -f "$dir/env" ]; then
    (gcs_load_env "$dir" && ! cl_alive "$GCS_PID_FILE") || cl_die "fake-gcs-server of $dir is already up"
  fi
  mkdir -p "$dir/data"
  for try in 1 2 3; do
    port=$(cl_free_ports 1)
    cat >"$dir/env" <<EOF
export GCS_DIR=$dir
export STORAGE_EMULATOR_HOST=http://127.0.0.1:$port
export GCS_PID_FILE=$dir/gcs.pid
export GCS_LOG=$dir/gcs.log
EOF
    gcs_load_env "$dir"
    if gcs_start "$dir"; then
      # shellcheck disable=SC2086 # GCS_BUCKETS is a space-separated list
      for b in "$@" ${GCS_BUCKETS:-}; do gcs_create_bucket "$b"; done
      cl_say "up: $STORAGE_EMULATOR_HOST; source $dir/env"
      return 0
    fi
    cl_stop "$GCS_PID_FILE" fake-gcs-server
    grep -qi "address already in use" "$GCS_LOG" 2>/dev/null || break
    cl_say "port $port was taken; retrying ($try)"
  done
  cl_die "could not start fake-gcs-server in $dir (log: $GCS_LOG)"
}

gcs_down() {
  local dir
  dir=$(cl_dir "${1:-}") || exit 1
  [ -f "$dir/env" ] || return 0
  gcs_load_env "$dir"
  cl_stop "$GCS_PID_FILE" fake-gcs-server
}
