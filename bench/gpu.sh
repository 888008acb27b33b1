#!/usr/bin/env bash
# bench/gpu.sh: everything worth doing in ONE call on a lent GPU machine (H100/H200, nvcc 13,
# cuBLAS, PyTorch). Prints the machine, runs the gpu tests, measures the cuBLAS GEMM ceiling, then
# times the LM and classifier training steps, ours vs PyTorch, in FP32/TF32/BF16, and prints one
# table (tokens/s, ms/step, TFLOP/s, % of the ceiling, ours/PyTorch; docs/gpu.md "Benchmark").
# Last line: gpu_ratio_vs_pytorch=<ours/theirs>, FP32 LM tokens/s: > 1 means ours is faster.
# Time: tests within TESTS_BUDGET_S (240) from the start, benches within BENCH_BUDGET_S (420),
# every run under its own timeout; ~7 minutes on an H100 at worst. Logs in $OUT (or build-gpu/out).
# Two ways to get the binaries:
#   prebuilt (the lent machine lacks this project's -dev packages): here `hack/device-pack`, then
#     run(command="bench/gpu.sh", carry=[".devcarry"], timeout_s=540)
#   built there: without .devcarry/pack.tar.xz (or with KUBEFIT_GPU_BUILD=1) it configures and
#     builds with CUDA and runs `ctest -L gpu`; when configure fails, the smoke test alone is built
#     with nvcc.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build=${BUILD_DIR:-$root/build-gpu}
out=${OUT:-$build/out}
mkdir -p "$out"
jobs=$(nproc)
export PATH="/usr/local/cuda/bin:$PATH"
ratio=nan
section() { printf '\n==== %s ====\n' "$*"; }
status=0
pack=$root/.devcarry/pack.tar.xz
prebuilt=
if [ -f "$pack" ] && [ -z "${KUBEFIT_GPU_BUILD:-}" ]; then
  prebuilt=$(mktemp -d /tmp/kubefit-prebuilt.XXXX)
  tar -C "$prebuilt" -xJf "$pack"
  # cuBLAS from this machine's CUDA install (the pack carries everything else).
  cublas=$(find /usr/local/cuda*/ /usr/lib/x86_64-linux-gnu /opt -name 'libcublas.so.13*' 2>/dev/null | head -1)
  export LD_LIBRARY_PATH="$prebuilt/lib:${cublas:+$(dirname "$cublas"):}${LD_LIBRARY_PATH:-}"
fi
section machine
nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv 2>&1 | tee "$out/gpu.txt"
nvcc --version 2>&1 | tail -2
cmake --version | head -1

if [ -n "$prebuilt" ]; then
  section "prebuilt binaries ($(cat "$prebuilt/commit")), cuBLAS from ${cublas:-nowhere}"
  bin=$prebuilt/bin
  ldd "$bin/test_gpu_lm" | grep -E 'not found|cublas|cudart|openblas' | sed 's/^/  /'
  : >"$out/gpu-tests.log"
  for t in "$bin"/test_gpu_*; do
    name=$(basename "$t")
    # the tests together get TESTS_BUDGET_S from the start of the script (the benches need the rest)
    limit=$(( ${TESTS_BUDGET_S:-240} - SECONDS )); [ "$limit" -gt "${GPU_TEST_TIMEOUT:-150}" ] && limit=${GPU_TEST_TIMEOUT:-150}
    if [ "$limit" -lt 10 ]; then echo "$name skipped: the tests' time budget is spent"; status=1; continue; fi
    timeout "$limit" "$t" >"$out/$name.log" 2>&1; rc=$?
    printf '%-22s exit %d\n' "$name" "$rc" | tee -a "$out/gpu-tests.log"
    grep -E 'FAIL|device|sgemm rate|checks|worst' "$out/$name.log" | head -25
    [ $rc = 0 ] || status=1
  done
else
section "configure + build (Release, CUDA)"
bin=$build/tests/gpu-backend
gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
if cmake -S . -B "$build" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DKUBEFIT_CUDA=ON >"$out/configure.log" 2>&1; then
  grep 'kubefit:' "$out/configure.log"
  # Everything first (best effort: another module may not build yet), then what the gpu label needs.
  cmake --build "$build" -j "$jobs" >"$out/build.log" 2>&1 || {
    echo "full build failed (tail below); building the gpu tests alone"; tail -20 "$out/build.log"; }
  cmake --build "$build" -j "$jobs" --target test_gpu_smoke test_gpu_ops test_gpu_lm test_gpu_math 2>&1 | tail -3

  section "ctest -L gpu"
  ctest --test-dir "$build" -L gpu --output-on-failure -V 2>&1 | tee "$out/ctest-gpu.log" | \
    grep -E 'SKIP|FAIL|checks|device|sgemm rate|tests passed|Passed|Failed|Skipped' | tail -60
  grep -q '100% tests passed' "$out/ctest-gpu.log" || status=1
  grep -q 'Skipped' "$out/ctest-gpu.log" && { echo "a gpu test skipped on a GPU machine"; status=1; }
else
  grep -E 'kubefit:|Error|Could not|not found' "$out/configure.log" | head -20
  section "fallback: smoke test built with nvcc alone (no jansson: log lines reduced to text)"
  cat >"$out/log_stub.c" <<'STUB'
#include <stdarg.h>
#include <stdio.h>
#include "log.h"
void log_emit(log_level level, const char *mod, const char *msg, const char *fields, ...)
{ fprintf(stderr, "[%d] %s: %s (%s)\n", (int)level, mod, msg, fields ? fields : ""); }
STUB
  if nvcc -O2 -arch=sm_90 -Icommon -Itrainer/cuda -Itests -D_GNU_SOURCE -o "$out/test_gpu_smoke" \
       tests/gpu/test_gpu_smoke.c trainer/cuda/*.cu common/err.c "$out/log_stub.c" -lcublas -lm; then
    LD_LIBRARY_PATH="/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}" "$out/test_gpu_smoke"; rc=$?; echo "test_gpu_smoke exit $rc"; [ $rc = 0 ] || status=1
  else
    status=1
  fi
fi
fi

section "GEMM ceiling: cuBLAS ${GEMM_N:-8192}^3, median of 10 (bench_gemm_gpu)"
# The yardstick for the table's TFLOP/s: the rate of one large product in each math mode with
# float32 storage (what the trainer runs), plus bf16-native (bf16 operands) for reference.
[ -n "$prebuilt" ] || cmake --build "$build" -j "$jobs" --target bench_gemm_gpu bench_lm_gpu \
  bench_clf_gpu 2>&1 | tail -1
: >"$out/gemm.jsonl"
timeout 90 "$bin/bench_gemm_gpu" --size "${GEMM_N:-8192}" 2>>"$out/bench.err" | \
  tee -a "$out/gemm.jsonl" || { echo "bench_gemm_gpu failed (see bench.err)"; status=1; }

section "where the FP32 LM step's device time goes (profile_lm_gpu; split-K on, then off)"
[ -n "$prebuilt" ] || cmake --build "$build" -j "$jobs" --target profile_lm_gpu 2>&1 | tail -1
timeout 60 "$bin/profile_lm_gpu" 2>>"$out/bench.err" >"$out/profile.jsonl" &&
  head -12 "$out/profile.jsonl" || echo "profile_lm_gpu failed (see bench.err)"
KUBEFIT_CUDA_SPLITK=0 timeout 60 "$bin/profile_lm_gpu" 2>>"$out/bench.err" >"$out/profile-nosplit.jsonl" &&
  grep -E 'wall_ms|"sgemm 64x' "$out/profile-nosplit.jsonl" | sed 's/^/split-K off: /'

section "training steps: kubefit CUDA backend vs PyTorch, FP32 / TF32 / BF16"
# LM: bench_lm_gpu vs bench_lm_torch.py, one AWD-LSTM LM step (B 64 x T 72, E 400, H 1152,
# 3 layers, V $LM_VOCAB): masks, forward + AR/TAR, backward, clip 0.1, Adam.
# Classifier: bench_clf_gpu vs bench_clf_torch.py, one get_text_classifier step (B 64, documents
# of 400..1400 tokens in bptt-72 chunks, L 200 labels, multi-label BCE + AR/TAR, clip, Adam).
# Every row has its own timeout and the whole section a budget (BENCH_BUDGET_S, counted from the
# start of this script), so a hang cannot eat the call: rows that no longer fit are skipped.
lm=(--vocab "${LM_VOCAB:-60000}" --emb 400 --hidden 1152 --layers 3 --batch 64 --bptt 72
    --steps "${LM_STEPS:-10}" --warmup 2)
clf=(--vocab "${LM_VOCAB:-60000}" --emb 400 --hidden 1152 --layers 3 --batch 64 --bptt 72
     --min-len 400 --max-len 1400 --labels 200 --steps "${CLF_STEPS:-4}" --warmup 1)
py=${KUBEFIT_TOOLS:-$HOME/.cache/kubefit}/venv-torch/bin/python
[ -x "$py" ] || py=python3
budget=${BENCH_BUDGET_S:-420}
: >"$out/steps.jsonl"
# row <what> <timeout> <command...>: runs one bench within the budget, appends its JSON line.
row() {
  local what=$1 limit=$2 left
  shift 2
  left=$((budget - SECONDS - 5))
  [ "$left" -lt "$limit" ] && limit=$left
  if [ "$limit" -lt 15 ]; then
    echo "skipped $what: the time budget (BENCH_BUDGET_S=$budget) is spent"
    return
  fi
  echo "== $what (timeout ${limit}s)" >>"$out/bench.err"
  timeout "$limit" "$@" 2>>"$out/bench.err" | tee -a "$out/steps.jsonl" >/dev/null
  local rc=${PIPESTATUS[0]}
  [ "$rc" = 0 ] && return
  echo "$what: exit $rc (124 = timed out; see bench.err)"
  case $what in *ours*) status=1 ;; esac
}
# the FP32 pairs first (the ratio), then BF16, then TF32
for math in fp32 bf16 tf32; do
  row "lm ours $math" 90 "$bin/bench_lm_gpu" "${lm[@]}" --math "$math"
  # the same step recorded once as a CUDA graph and replayed (docs/gpu.md "Graphs")
  row "lm ours $math graph" 90 "$bin/bench_lm_gpu" "${lm[@]}" --math "$math" --graph
  row "lm pytorch $math" 120 "$py" tests/gpu-backend/bench_lm_torch.py "${lm[@]}" --math "$math"
  row "clf ours $math" 90 "$bin/bench_clf_gpu" "${clf[@]}" --math "$math"
  row "clf pytorch $math" 120 "$py" tests/gpu-backend/bench_clf_torch.py "${clf[@]}" --math "$math"
done
grep -E 'SKIP|Error|error|FAIL|fastai not' "$out/bench.err" | sort | uniq -c | head -12
python3 - "$out/gemm.jsonl" "$out/steps.jsonl" "$out/ratio.txt" <<'PY' | tee "$out/table.txt"
import json, sys

def rows(path):
    return [json.loads(l) for l in open(path) if l.startswith("{")]

ceiling = {r["math"]: r["tflops"] for r in rows(sys.argv[1])}
steps = rows(sys.argv[2])

def flop(r):
    """Model FLOPs of one step: 2 per multiply-add of every matrix product, backward = 2x
    forward. Per encoder position, layer l: gates 4*H_l x (I_l + H_l); the LM adds the tied
    decoder (E x V) per token; the classifier's head (3E x 50, 50 x L) per document."""
    E, H, NL = r["emb"], r["hidden"], r["layers"]
    per_tok = 0
    for l in range(NL):
        i, h = (E if l == 0 else H), (E if l == NL - 1 else H)
        per_tok += 2 * 4 * h * (i + h)
    fwd = r["tokens"] * per_tok
    if r["bench"] == "lm_step":
        fwd += r["tokens"] * 2 * E * r["vocab"]
    else:
        fwd += r["batch"] * 2 * (3 * E * 50 + 50 * r["labels"])
    return 3 * fwd

def key(r):
    return (r["bench"], r["math"])

theirs = {key(r): r for r in steps if r["backend"].startswith("pytorch")}
print(f"{'step':<5} {'math':<5} {'backend':<23} {'fwd_ms':>8} {'bwd_ms':>8} {'opt_ms':>7} "
      f"{'step_ms':>8} {'tokens/s':>10} {'TFLOP/s':>8} {'%ceil':>6} {'ours/pt':>7} {'loss':>7}")
order = {"lm_step": 0, "clf_step": 1}
maths = {"fp32": 0, "tf32": 1, "bf16": 2}
def line(r):
    tf = flop(r) / (r["step_ms"] * 1e-3) * 1e-12 if r["step_ms"] > 0 else 0.0
    ceil = ceiling.get(r["math"])
    pct = f"{100 * tf / ceil:6.1f}" if ceil else f"{'-':>6}"
    peer = theirs.get(key(r))
    ratio = (f"{r['tokens_per_s'] / peer['tokens_per_s']:7.2f}"
             if r["backend"].startswith("cuda") and peer and peer["tokens_per_s"] > 0
             else f"{'':>7}")
    split = (f"{'-':>8} {'-':>8} {'-':>7}" if r["backend"].endswith("graph") else
             f"{r['fwd_ms']:>8.1f} {r['bwd_ms']:>8.1f} {r['opt_ms']:>7.1f}")
    print(f"{r['bench'][:-5]:<5} {r['math']:<5} {r['backend']:<23} {split} {r['step_ms']:>8.1f} "
          f"{r['tokens_per_s']:>10.0f} {tf:>8.2f} {pct} {ratio} {r['loss']:>7.3f}")

for r in sorted(steps, key=lambda r: (order.get(r.get("bench"), 9), maths.get(r.get("math"), 9),
                                      r.get("backend") != "cuda")):
    try:
        line(r)
    except (KeyError, TypeError, ValueError) as e:  # a row of an unexpected shape: show it raw
        print(f"(row not understood: {e!r}) {json.dumps(r)}")
print("ceiling TFLOP/s (cuBLAS, float32 storage): " +
      ", ".join(f"{m} {ceiling[m]:.1f}" for m in ("fp32", "tf32", "bf16", "bf16-native")
                if m in ceiling))
# the trainer's LM stage replays its step as a graph (fit.c), so that row is ours when present
ours = ([r for r in steps if key(r) == ("lm_step", "fp32") and r["backend"] == "cuda-graph"] or
        [r for r in steps if key(r) == ("lm_step", "fp32") and r["backend"] == "cuda"])
peer = theirs.get(("lm_step", "fp32"))
ratio = ours[0]["tokens_per_s"] / peer["tokens_per_s"] if ours and peer else float("nan")
open(sys.argv[3], "w").write(f"{ratio:.3f}\n")
PY
ratio=$(cat "$out/ratio.txt" 2>/dev/null || echo nan)
grep -q '"bench":"lm_step","backend":"cuda"[^}]*"math":"fp32"' "$out/steps.jsonl" 2>/dev/null ||
  { echo "no FP32 LM row of ours"; status=1; }

section "result"
echo "gpu.sh exit $status (logs in $out)"
echo "gpu_ratio_vs_pytorch=$ratio"
exit $status
