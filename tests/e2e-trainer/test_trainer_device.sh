#!/usr/bin/env bash
# test_trainer_device: --device / --precision from the outside. Without a usable GPU (a CPU-only
# build, or a CUDA build on a machine without one) `--device cuda` trains on the CPU after ONE
# warning naming the reason, `--device auto` after ONE info line, `--device cpu` says nothing;
# all three give the same model as the CPU (same seed, same threads). With a GPU, cuda/auto must
# say "training on the GPU" and record device "cuda" instead (tests/gpu-backend/test_gpu_trainer
# compares the numbers there). Bad values are exit-2 errors that name the flag.
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
small=(--emb-size 16 --hidden-size 24 --layers 2 --batch-size 16 --bptt 16 --max-vocab 500 --threads 2
       --lm-epochs 1 --epochs 2 --clip 0.5 --seed 7)

# run JOB ARGS...: trains into job JOB; exit status in $rc, stderr in $tmp/JOB.err
run() {
  local job=$1; shift
  "$T" train --lang en --bucket-name "$B" --model-dir m --job "$job" "${small[@]}" "$@" \
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
ok "[ $rc = 0 ]" "--device cuda: exit $rc ($(tail -2 $tmp/cuda.err))"
if grep -q '"training on the GPU"' "$tmp/cuda.err"; then
  echo "note: a GPU answered; the fallback checks are skipped"
  ok "[ \"$(field $tmp/b/m/en/cuda/1/config.json device)\" = cuda ]" "--device cuda on a GPU: config.json says cuda"
  gpu=1
else
  gpu=0
  ok "[ $(lines '\"level\":\"warn\".*falling back to the CPU' $tmp/cuda.err) = 1 ]" \
     "--device cuda without a GPU: exactly one warning ($(grep -c 'falling back' $tmp/cuda.err) found)"
  ok "grep -q '\"msg\":\"--device cuda is not possible here: falling back to the CPU\",\"device\":\"cpu\",\"reason\":\"[^\"]' $tmp/cuda.err" \
     "--device cuda: the warning names the reason ($(grep 'falling back' $tmp/cuda.err | head -c 300))"
  ok "[ \"$(field $tmp/b/m/en/cuda/1/config.json device)\" = cpu ]" "--device cuda fallback: config.json says cpu"
  ok "grep -q '\"phase\":\"Succeeded\"' $tmp/cuda.json" "--device cuda fallback: Succeeded result"
  ok "python3 -c \"import json,sys; a=json.load(open('$tmp/b/m/en/cpu/1/metrics.json')); b=json.load(open('$tmp/b/m/en/cuda/1/metrics.json')); sys.exit(not (a['history'][-1]['trainLoss']==b['history'][-1]['trainLoss'] and a['overall']==b['overall'] and a['overall']['validLoss']>0))\"" \
     "--device cuda fallback trains exactly as --device cpu (same history and metrics)"
  run auto --device auto
  ok "[ $rc = 0 ]" "--device auto: exit $rc"
  ok "[ $(lines '\"level\":\"info\".*\"no usable GPU: training on the CPU\",\"device\":\"cpu\",\"reason\":\"[^\"]' $tmp/auto.err) = 1 ]" \
     "--device auto without a GPU: one info line with the reason"
  ok "[ $(lines '\"level\":\"warn\".*GPU\|falling back' $tmp/auto.err) = 0 ]" "--device auto: no warning"
fi

# --precision: recorded; on the CPU a non-fp32 request is a warning, not an error.
run prec --device cpu --precision bf16
ok "[ $rc = 0 ]" "--precision bf16 --device cpu: exit $rc"
ok "grep -q '\"level\":\"warn\".*--precision applies to the GPU only' $tmp/prec.err" "--precision on the CPU: warned"
ok "[ \"$(field $tmp/b/m/en/prec/1/config.json precision)\" = fp32 ]" "--precision on the CPU: config.json says fp32 (what was used)"

# Bad values: exit 2, named, BadInput result.
run bad --device tpu
ok "[ $rc = 2 ]" "--device tpu: exit $rc, expected 2"
ok "grep -q -- '--device tpu: expected auto, cpu or cuda' $tmp/bad.err" "--device tpu is named ($(tail -1 $tmp/bad.err))"
ok "grep -q '\"reason\":\"BadInput\"' $tmp/bad.json" "--device tpu: BadInput result"
run badp --precision fp64
ok "[ $rc = 2 ]" "--precision fp64: exit $rc, expected 2"
ok "grep -q -- '--precision: expected fp32, tf32 or bf16, got \\\\\"fp64\\\\\"' $tmp/badp.err" "--precision fp64 is named ($(tail -1 $tmp/badp.err))"

echo "$checks checks, $fails failed (gpu=$gpu)"
[ $fails = 0 ]
