#!/usr/bin/env bash
# stalled.sh: what a stalled controller costs a training run. The same small CPU run of the real
# kubefit-trainer, alternately without a progress URL and with one whose server accepts the
# connection and never answers (what a SIGSTOPped or wedged controller looks like to a client),
# twice each; the best time of each kind is compared. The trainer posts from a background thread
# (trainer/train/progress.c), so the stalled server must cost the training (the result's
# trainSeconds) at most 10% + 0.5 s, and the process's exit (a POST in flight is aborted) at most
# 2 s more.
set -uo pipefail
src=${KUBEFIT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${KUBEFIT_BINARY_DIR:-$src/build}
T=$bin/trainer/kubefit-trainer
[ -x "$T" ] || { echo "FAIL: $T not built"; exit 1; }
tmp=$(mktemp -d)
hole_pid=
cleanup() { [ -n "$hole_pid" ] && kill "$hole_pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
mkdir -p "$tmp/b/en/data"
python3 "$src/tests/e2e-trainer/keyword_data.py" "$tmp/b/en/data" 5 1500 300 1000 || { echo "FAIL: no data"; exit 1; }

# A listener that never accepts: connections complete in the kernel's backlog, then hang.
python3 - "$tmp/port" <<'PY' &
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(64)
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
while True:
    time.sleep(3600)
PY
hole_pid=$!
for _ in $(seq 1 50); do [ -s "$tmp/port" ] && break; sleep 0.1; done
port=$(cat "$tmp/port")

# run NAME [--progress-url URL]: prints "training-seconds wall-seconds" of one run.
run() {
  local name=$1; shift
  local t0 t1
  t0=$(date +%s.%N)
  KUBEFIT_PROGRESS_TOKEN_FILE=/nonexistent "$T" train --lang en --bucket-name "file://$tmp/b" --model-dir "m-$name" \
    --epochs 8 --batch-size 32 --emb-size 64 --hidden-size 128 --layers 2 --bptt 32 --max-vocab 2000 \
    --threads 1 --lm-epochs 2 --device cpu --result-file "$tmp/$name.json" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" ||
    { echo "FAIL: run $name: $(tail -3 "$tmp/$name.err")" >&2; exit 1; }
  t1=$(date +%s.%N)
  echo "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["trainSeconds"])' "$tmp/$name.json") $(echo "$t1 - $t0" | bc)"
}

url="http://127.0.0.1:$port/progress/ns/job/1"
train_b=() train_s=() wall_b=() wall_s=()
for i in 1 2; do
  read -r t w < <(run base$i); train_b+=("$t"); wall_b+=("$w")
  read -r t w < <(run stalled$i --progress-url "$url"); train_s+=("$t"); wall_s+=("$w")
done
lines=$(grep -c '"stage"' "$tmp/stalled1.out")
best() { printf '%s\n' "$@" | sort -g | head -1; }
tb=$(best "${train_b[@]}") ts=$(best "${train_s[@]}") wb=$(best "${wall_b[@]}") ws=$(best "${wall_s[@]}")
echo "no progress URL:         training ${train_b[*]} s, process ${wall_b[*]} s"
echo "stalled progress server: training ${train_s[*]} s, process ${wall_s[*]} s ($lines reports each)"
grep -h '"msg":"progress reports"' "$tmp/stalled1.err" || { echo "FAIL: the stalled runs did not use the progress URL"; exit 1; }
fails=0
if [ "$(echo "$ts <= $tb * 1.10 + 0.5" | bc)" = 1 ]; then
  echo "ok: training with a stalled controller: best $ts s vs $tb s (limit: 10% + 0.5 s)"
else
  echo "FAIL: a stalled controller slowed training from $tb s to $ts s (limit: 10% + 0.5 s)"; fails=1
fi
extra=$(echo "($ws - $ts) - ($wb - $tb)" | bc)
if [ "$(echo "$extra <= 2.0" | bc)" = 1 ]; then
  echo "ok: the process ends $extra s later than without a URL (limit: 2 s)"
else
  echo "FAIL: the process ends $extra s later with a stalled controller (limit: 2 s)"; fails=1
fi
exit $fails
