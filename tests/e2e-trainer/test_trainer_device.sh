#!/usr/bin/env bash
# test_trainer_device: --device / --precision / --threads from the outside. Without a usable GPU
# `--device cuda` is an error, never a silent CPU run: exit 3 (Transient: retried) with "no usable
# GPU" when this build has CUDA, exit 2 (BadInput) with "built without CUDA" when it has not
# (KUBEFIT_TRAINER_CUDA says which build this is: ON/1 or OFF/empty); no model is written.
# `--device auto` trains on the CPU after ONE info line and gives the same model as
# `--device cpu` (same seed, same threads); `--device cpu` says nothing. The device used is in
# config.json and the result. With a GPU, cuda/auto must say "training on the GPU" and record
# device "cuda" (tests/gpu-backend/test_gpu_trainer compares the numbers there). --threads 0
# follows the cgroup CPU quota (a fake cgroup folder via KUBEFIT_CGROUP_ROOT). Bad values are
# exit-2 errors that name the flag.
set -uo pipefail
src=${KUBEFIT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${KUBEFIT_BINARY_DIR:-$src/build}
T=${KUBEFIT_TRAINER:-$bin/trainer/kubefit-trainer}
[ -x "$T" ] || { echo "FAIL: $T not built"; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fails=0 checks=0
ok() { checks=$((checks+1)); if ! eval "$1"; then echo "FAIL: $2"; fails=$((fails+1)); fi; }

# Tiny multi-label keyword data (no LM corpus: the LM fine-tunes on the texts).
mkdir -p "$tmp/b/en/data"
python3 "$src/tests/e2e-trainer/keyword_data.py" "$tmp/b/en/data" 11 96 32 || { echo "FAIL: no data"; exit 1; }
B="file://$tmp/b"
small=(--emb-size 16 --hidden-size 24 --layers 2 --batch-size 16 --bptt 16 --max-vocab 500
       --lm-epochs 1 --epochs 2 --clip 0.5 --seed 7)

# run JOB ARGS...: trains into job JOB; exit status in $rc, stderr in $tmp/JOB.err
run() { # (--threads 2 unless the call gives --threads)
  local job=$1; shift
  local thr=(--threads 2); [[ " $* " == *" --threads "* ]] && thr=()
  "$T" train --lang en --bucket-name "$B" --model-dir m --job "$job" "${small[@]}" "${thr[@]}" "$@" \
    --result-file "$tmp/$job.json" >"$tmp/$job.out" 2>"$tmp/$job.err"
  rc=$?
}
field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2" 2>/dev/null; }
lines() { grep -c -- "$1" "$2"; }

run cpu --device cpu
ok "[ $rc = 0 ]" "--device cpu: exit $rc ($(tail -2 $tmp/cpu.err))"
ok "[ \"$(field $tmp/b/m/en/cpu/1/config.json device)\" = cpu ]" "--device cpu: config.json says cpu"
ok "[ $(lines 'GPU\|falling back' $tmp/cpu.err) = 0 ]" "--device cpu: no device line"

run cuda --device cuda
if grep -q '"training on the GPU"' "$tmp/cuda.err"; then
  echo "note: a GPU answered; the no-GPU checks are skipped"
  ok "[ $rc = 0 ]" "--device cuda on a GPU: exit $rc ($(tail -2 $tmp/cuda.err))"
  ok "[ \"$(field $tmp/b/m/en/cuda/1/config.json device)\" = cuda ]" "--device cuda on a GPU: config.json says cuda"
  ok "[ \"$(field $tmp/cuda.json device)\" = cuda ]" "--device cuda on a GPU: the result says cuda"
  gpu=1
else
  gpu=0
  case "${KUBEFIT_TRAINER_CUDA:-}" in
    ON|on|1|TRUE|true) want=3 reason=Transient msg='--device cuda: no usable GPU: ' ;;
    *) want=2 reason=BadInput msg='--device cuda: this trainer was built without CUDA' ;;
  esac
  ok "[ $rc = $want ]" "--device cuda without a GPU: exit $rc, expected $want ($(tail -1 $tmp/cuda.err))"
  ok "grep -q -- '$msg' $tmp/cuda.err" "--device cuda without a GPU says why ($(tail -1 $tmp/cuda.err | head -c 300))"
  ok "grep -q '\"phase\":\"Failed\",\"reason\":\"$reason\"' $tmp/cuda.json" "--device cuda without a GPU: a $reason result ($(cat $tmp/cuda.json))"
  ok "[ ! -e $tmp/b/m/en/cuda/1/model.safetensors ] && [ ! -e $tmp/b/m/en/cuda/1/config.json ]" \
     "--device cuda without a GPU: nothing trained, nothing written"
  ok "! grep -q 'falling back\|training on the CPU' $tmp/cuda.err" "--device cuda never falls back to the CPU"
  run auto --device auto
  ok "[ $rc = 0 ]" "--device auto: exit $rc"
  ok "[ $(lines '\"level\":\"info\".*\"no usable GPU: training on the CPU\",\"device\":\"cpu\",\"reason\":\"[^\"]' $tmp/auto.err) = 1 ]" \
     "--device auto without a GPU: one info line with the reason"
  ok "[ $(lines '\"level\":\"warn\".*GPU\|falling back' $tmp/auto.err) = 0 ]" "--device auto: no warning"
  ok "[ \"$(field $tmp/b/m/en/auto/1/config.json device)\" = cpu ] && [ \"$(field $tmp/auto.json device)\" = cpu ]" \
     "--device auto fallback: config.json and the result say cpu"
  ok "python3 -c \"import json,sys; a=json.load(open('$tmp/b/m/en/cpu/1/metrics.json')); b=json.load(open('$tmp/b/m/en/auto/1/metrics.json')); sys.exit(not (a['history'][-1]['trainLoss']==b['history'][-1]['trainLoss'] and a['overall']==b['overall'] and a['overall']['validLoss']>0))\"" \
     "--device auto fallback trains exactly as --device cpu (same history and metrics)"
fi

# --threads 0: the cgroup CPU quota (rounded up), said in a log line; --threads N: N.
mkdir -p "$tmp/cg" && echo "150000 100000" > "$tmp/cg/cpu.max"
KUBEFIT_CGROUP_ROOT="$tmp/cg" run thr --device cpu --threads 0
ok "[ $rc = 0 ]" "--threads 0 with a cgroup quota: exit $rc"
ok "grep -q '\"CPU threads\",\"threads\":2,\"from\":\"cgroup CPU quota\"' $tmp/thr.err" \
   "--threads 0 under a 1.5-CPU quota: 2 threads from the quota ($(grep 'CPU threads' $tmp/thr.err))"
ok "grep -q '\"CPU threads\",\"threads\":2,\"from\":\"--threads\"' $tmp/cpu.err" "--threads 2: 2 threads from the flag"

# --precision: recorded as used. On the CPU, bf16 means bf16 products on AMX where the CPU has
# AMX-BF16 (else fp32 and a warning naming why); tf32 is a GPU mode: fp32 and a warning.
run prec --device cpu --precision bf16
ok "[ $rc = 0 ]" "--precision bf16 --device cpu: exit $rc"
if grep -qw amx_bf16 /proc/cpuinfo; then
  ok "grep -q '\"msg\":\"CPU products in bf16 (AMX)\"' $tmp/prec.err" "--precision bf16 on an AMX CPU: said"
  ok "[ \"$(field $tmp/b/m/en/prec/1/config.json precision)\" = bf16 ]" "--precision bf16 on an AMX CPU: config.json says bf16"
else
  ok "grep -q '\"level\":\"warn\".*the CPU computes in fp32.*AMX-BF16' $tmp/prec.err" "--precision bf16 without AMX: warned"
  ok "[ \"$(field $tmp/b/m/en/prec/1/config.json precision)\" = fp32 ]" "--precision bf16 without AMX: config.json says fp32"
fi
run prec32 --device cpu --precision tf32
ok "[ $rc = 0 ]" "--precision tf32 --device cpu: exit $rc"
ok "grep -q '\"level\":\"warn\".*the CPU computes in fp32.*tf32 is a GPU mode' $tmp/prec32.err" "--precision tf32 on the CPU: warned"
ok "[ \"$(field $tmp/b/m/en/prec32/1/config.json precision)\" = fp32 ]" "--precision tf32 on the CPU: config.json says fp32"

# Bad values: exit 2, named, BadInput result.
run bad --device tpu
ok "[ $rc = 2 ]" "--device tpu: exit $rc, expected 2"
ok "grep -q -- '--device: expected auto, cpu or cuda, got \\\"tpu' $tmp/bad.err" "--device tpu is named ($(tail -1 $tmp/bad.err))"
ok "grep -q '\"reason\":\"BadInput\"' $tmp/bad.json" "--device tpu: BadInput result"
run badp --precision fp64
ok "[ $rc = 2 ]" "--precision fp64: exit $rc, expected 2"
ok "grep -q -- '--precision: expected fp32, tf32 or bf16, got \\\\\"fp64\\\\\"' $tmp/badp.err" "--precision fp64 is named ($(tail -1 $tmp/badp.err))"

echo "$checks checks, $fails failed (gpu=$gpu)"
[ $fails = 0 ]
