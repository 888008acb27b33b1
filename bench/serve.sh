#!/usr/bin/env bash
# bench/serve.sh: kubefit-serve against TorchServe on the same trained model and the same requests.
#   bench/serve.sh [BUILD_DIR]          (a Release build with kubefit-serve, kubefit-trainer, loadgen)
# env: SIZE=demo|default   the model trained here when MODEL_DIR is unset: demo = examples/
#                          trainingjob-demo.yaml's size (emb 64, hidden 192, 2 layers, classifier
#                          stage), default = fastai's (400, 1152, 3); on data/debtags-small/en
#      MODEL_DIR=DIR       a run folder (model.safetensors, vocab.txt, config.json) to serve instead
#      WORKERS (nproc)     inference workers of both servers, 1 thread each (kubefit-serve --workers N
#                          --threads 1; TorchServe N Python workers with 1 torch thread)
#      SECONDS_EACH (10), WARMUP (2)   per concurrency level
#      BATCH (8), DELAY_MS (2)         dynamic batching of both servers (max batch, max delay)
# Both servers get POST /predictions/NAME with a raw text body (kubefit-serve's TorchServe route), the
# texts of debtags-small's en validation set in turn, from bench/serve/loadgen (closed loop,
# keep-alive) at concurrency 1, 8 and 32. TorchServe 0.12 and torch-model-archiver come from PyPI into
# $KUBEFIT_TOOLS/venv-serve (PyTorch and fastai from venv-torch through a .pth file), its handler is
# bench/serve/kubefit_handler.py (the model loaded through hack/kubefit_torch.py, fastai's tokenizer),
# and it runs on the machine's Java. Printed: throughput and p50/p99 latency per concurrency, cold
# start (process start -> first 200 answer; TorchServe's .mar packaging not counted), RSS after the
# load (the whole process tree: TorchServe's JVM and Python workers), the load average, and last
# serve_ratio_vs_torchserve=<our requests/s over theirs at concurrency 8>.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
tools=${KUBEFIT_TOOLS:-$HOME/.cache/kubefit}
py=$tools/venv-torch/bin/python
venv=$tools/venv-serve
threads=${WORKERS:-$(nproc)}
secs=${SECONDS_EACH:-10}
warm=${WARMUP:-2}
batch=${BATCH:-8}
delay=${DELAY_MS:-2}
size=${SIZE:-demo}
serve=$build/serve/kubefit-serve
trainer=$build/trainer/kubefit-trainer
loadgen=$build/bench/serve/loadgen
for f in "$serve" "$trainer" "$loadgen"; do
  [ -x "$f" ] || { echo "serve.sh: $f missing (cmake --build $build --target kubefit-serve kubefit-trainer loadgen)" >&2; exit 2; }
done
[ -x "$py" ] || { echo "serve.sh: $py missing (hack/setup)" >&2; exit 2; }
command -v java >/dev/null || { echo "serve.sh: java missing (TorchServe's frontend runs on it)" >&2; exit 2; }

# TorchServe from PyPI, in its own environment over venv-torch's PyTorch.
if [ ! -x "$venv/bin/torchserve" ]; then
  echo "installing torchserve 0.12.0 and torch-model-archiver 0.12.0 into $venv" >&2
  "$py" -m venv "$venv"
  "$py" -c "import site; print(site.getsitepackages()[0])" > "$venv/lib/python3.11/site-packages/kubefit-venv-torch.pth"
  "$venv/bin/python" -m pip install -q torchserve==0.12.0 torch-model-archiver==0.12.0
fi

work=$(mktemp -d /tmp/kubefit-bench-serve-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null || true; done
  sleep 1
  # TorchServe's pid file (in the temp folder) would make the next --start refuse to run.
  local tsp=/tmp/.model_server.pid
  if [ -f "$tsp" ] && ! kill -0 "$(cat "$tsp")" 2>/dev/null; then rm -f "$tsp"; fi
  rm -rf "$work"
}
trap cleanup EXIT

# ---- the model and the texts ---------------------------------------------------------------------
data=$root/data/debtags-small/en/data
[ -f "$data/valid.csv" ] || { echo "serve.sh: $data missing (hack/make-datasets)" >&2; exit 2; }
if [ -z "${MODEL_DIR:-}" ]; then
  mkdir -p "$work/bucket/en/data"
  cp "$data/train.csv" "$data/valid.csv" "$work/bucket/en/data/"
  case $size in
    demo) margs=(--emb-size 64 --hidden-size 192 --layers 2 --epochs 2 --batch-size 32 --lr 0.2 --drop-mult 0.2
                 --bptt 48 --max-vocab 8000) ;;
    default) margs=(--emb-size 400 --hidden-size 1152 --layers 3 --epochs 1 --batch-size 32 --bptt 72
                    --max-vocab 8000) ;;
    *) echo "serve.sh: SIZE is demo or default" >&2; exit 2 ;;
  esac
  echo "training the $size model (classifier stage, debtags-small en)..." >&2
  t0=$(date +%s.%N)
  "$trainer" train --lang en --bucket-name "$work/bucket" --model-dir models --job bench --run 1 \
    --stages classifier --threads "$threads" --result-file "$work/result.json" "${margs[@]}" >/dev/null 2>"$work/train.log" \
    || { tail -5 "$work/train.log" >&2; exit 1; }
  echo "trained in $(python3 -c "import time; print(round(time.time() - $t0))") s" >&2
  MODEL_DIR=$work/bucket/models/en/bench/1
fi
model=$(python3 -c "import json,sys; c=json.load(open(sys.argv[1])); print(c.get('embSize'), c.get('hiddenSize'), c.get('layers'), len(c.get('labels', [])), c.get('vocabSize'), c.get('multiLabel'))" "$MODEL_DIR/config.json")
python3 - "$data/valid.csv" "$work/texts.txt" <<'EOF'
import csv, sys
rows = [r["text"].replace("\r", " ").replace("\n", " ").strip() for r in csv.DictReader(open(sys.argv[1], newline=""))]
open(sys.argv[2], "w").write("".join(t + "\n" for t in rows if t))
EOF
ntexts=$(wc -l <"$work/texts.txt")
first_text=$(head -1 "$work/texts.txt")

free_port() { python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"; }
# RSS (KiB) of a process and all its descendants.
rss_tree() {
  python3 - "$1" <<'EOF'
import os, sys
kids = {}
for p in os.listdir("/proc"):
    if p.isdigit():
        try:
            ppid = int(open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[1])
            kids.setdefault(ppid, []).append(int(p))
        except OSError:
            pass
todo, total = [int(sys.argv[1])], 0
while todo:
    p = todo.pop()
    try:
        for line in open(f"/proc/{p}/status"):
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    except OSError:
        pass
    todo += kids.get(p, [])
print(total)
EOF
}
# Seconds until POST /predictions/NAME answers 200 (the process started at $2).
wait_first_answer() {
  local port=$1 t0=$2 name=$3
  for _ in $(seq 1 1200); do
    if curl -sf -o /dev/null -X POST --data-binary "$first_text" "http://127.0.0.1:$port/predictions/$name"; then
      python3 -c "import time; print(f'{time.time() - $t0:.2f}')"
      return 0
    fi
    sleep 0.1
  done
  echo "no answer from port $port" >&2
  return 1
}
run_levels() { # port name label -> lines "label c rps p50 p99 errors"
  for c in 1 8 32; do
    out=$("$loadgen" --port "$1" --path "/predictions/$2" --bodies "$work/texts.txt" --concurrency "$c" \
          --seconds "$secs" --warmup "$warm")
    python3 -c "import json,sys; d=json.loads(sys.argv[1]); print(sys.argv[2], d['concurrency'], d['rps'], d['p50_ms'], d['p99_ms'], d['errors'])" "$out" "$3"
  done
}
# The answers to the first 50 texts into a file, as a JSON list (to compare the two servers).
answers() {
  python3 - "$work/texts.txt" "$1" "$2" <<'EOF'
import json, sys, urllib.request
out = []
for t in open(sys.argv[1]).read().splitlines()[:50]:
    req = urllib.request.Request(f"http://127.0.0.1:{sys.argv[2]}/predictions/bench", data=t.encode(), method="POST")
    out.append(json.load(urllib.request.urlopen(req, timeout=60)))
json.dump(out, open(sys.argv[3], "w"))
EOF
}
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- kubefit-serve -------------------------------------------------------------------------------
port=$(free_port)
t0=$(date +%s.%N)
setsid "$serve" --model-uri "$MODEL_DIR/" --model-name bench --listen "127.0.0.1:$port" --workers "$threads" --threads 1 \
  --max-batch-size "$batch" --max-batch-delay-ms "$delay" --drain-delay 0 2>"$work/serve.log" &
pids+=($!)
ours_pid=$!
ours_cold=$(wait_first_answer "$port" "$t0" bench)
ours=$(run_levels "$port" bench kubefit-serve)
ours_rss=$(rss_tree "$ours_pid")
answers "$port" "$work/ours.json"
ours_batches=$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^kubefit_serve_batch_size_(sum|count) /{v[$1]=$2} END {printf "%.2f", v["kubefit_serve_batch_size_sum"]/v["kubefit_serve_batch_size_count"]}')
kill -TERM "$ours_pid"
wait "$ours_pid" || true

# ---- TorchServe ----------------------------------------------------------------------------------
mkdir -p "$work/store" "$work/ts"
cp "$MODEL_DIR/vocab.txt" "$root/hack/kubefit_torch.py" "$work/"
"$venv/bin/torch-model-archiver" --model-name bench --version 1.0 --handler "$root/bench/serve/kubefit_handler.py" \
  --serialized-file "$MODEL_DIR/model.safetensors" --extra-files "$work/vocab.txt,$work/kubefit_torch.py" \
  --export-path "$work/store" --force
tport=$(free_port); mport=$(free_port); xport=$(free_port)
cat >"$work/ts/config.properties" <<EOF
inference_address=http://127.0.0.1:$tport
management_address=http://127.0.0.1:$mport
metrics_address=http://127.0.0.1:$xport
model_store=$work/store
load_models=bench.mar
disable_token_authorization=true
enable_envvars_config=false
default_workers_per_model=$threads
job_queue_size=1000
models={"bench": {"1.0": {"defaultVersion": true, "marName": "bench.mar", "minWorkers": $threads, "maxWorkers": $threads, "batchSize": $batch, "maxBatchDelay": $delay, "responseTimeout": 120}}}
EOF
t0=$(date +%s.%N)
cd "$work/ts"
PATH=$venv/bin:$PATH LOG_LOCATION=$work/ts/logs METRICS_LOCATION=$work/ts/logs KUBEFIT_TS_THREADS=1 \
  setsid "$venv/bin/torchserve" --start --foreground --ncs --disable-token-auth --ts-config "$work/ts/config.properties" \
  >"$work/ts/out.log" 2>&1 &
ts_pid=$! # setsid's process is torchserve's, the leader of its process group (JVM and workers below)
cd "$root"
pids+=($ts_pid)
theirs_cold=$(wait_first_answer "$tport" "$t0" bench) || { tail -30 "$work/ts/out.log" >&2; exit 1; }
theirs=$(run_levels "$tport" bench torchserve)
theirs_rss=$(rss_tree "$ts_pid")
answers "$tport" "$work/theirs.json"
agree=$(python3 -c "
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
same = sum(x['labels'] == y['labels'] for x, y in zip(a, b))
diff = max(abs(x['probabilities'][k] - y['probabilities'][k]) for x, y in zip(a, b) for k in x['probabilities'])
print(f'{same}/{len(a)} texts get the same labels; largest probability difference {diff:.4f}')" "$work/ours.json" "$work/theirs.json")
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
"$venv/bin/torchserve" --stop >/dev/null 2>&1 || true
kill -TERM -- "-$ts_pid" 2>/dev/null || true
wait "$ts_pid" 2>/dev/null || true

# ---- report --------------------------------------------------------------------------------------
python3 - "$ours" "$theirs" "$ours_cold" "$theirs_cold" "$ours_rss" "$theirs_rss" "$model" "$ntexts" "$threads" \
  "$batch" "$delay" "$load_before" "$load_after" "$ours_batches" "$agree" <<'EOF'
import sys
ours, theirs = sys.argv[1].splitlines(), sys.argv[2].splitlines()
E, H, NL, L, V, multi = sys.argv[7].split()
print(f"model: emb {E}, hidden {H}, {NL} layers, vocab {V}, {L} labels (multi-label {multi}); {sys.argv[8]} texts; "
      f"{sys.argv[9]} workers x 1 thread and batching max {sys.argv[10]} texts / {sys.argv[11]} ms on both")
print(f"load average before {sys.argv[12]}, after {sys.argv[13]}")
print(f"{'server':<14}{'conc':>5}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}")
rate = {}
for line in ours + theirs:
    name, c, rps, p50, p99, err = line.split()
    rate[(name, c)] = float(rps)
    print(f"{name:<14}{c:>5}{float(rps):>10.1f}{float(p50):>10.1f}{float(p99):>10.1f}{err:>8}")
print(f"cold start to the first answer: kubefit-serve {sys.argv[3]} s, torchserve {sys.argv[4]} s")
print(f"RSS after the load: kubefit-serve {int(sys.argv[5]) / 1024:.0f} MiB, torchserve {int(sys.argv[6]) / 1024:.0f} MiB "
      f"(JVM + workers)")
print(f"kubefit-serve mean batch size over the run: {sys.argv[14]}")
print(f"answers on the first 50 texts: {sys.argv[15]} (tokenizers differ: kubefit's C tokenizer vs spaCy + fastai rules)")
for c in ("1", "8", "32"):
    print(f"ratio at concurrency {c}: {rate[('kubefit-serve', c)] / rate[('torchserve', c)]:.2f}")
print(f"serve_ratio_vs_torchserve={rate[('kubefit-serve', '8')] / rate[('torchserve', '8')]:.2f}")
EOF
