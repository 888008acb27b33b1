#!/usr/bin/env bash
# bench/gpu.sh: everything worth doing in ONE call on a lent GPU machine (H100/H200, nvcc 13,
# cuBLAS, PyTorch). Prints the machine, runs the gpu tests, then the LM training step against
# PyTorch (last line: gpu_ratio_vs_pytorch=<ours/theirs>, FP32 tokens/s: > 1 means ours is faster).
# Writes logs to $OUT (or build-gpu/out).
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
    timeout "${GPU_TEST_TIMEOUT:-150}" "$t" >"$out/$name.log" 2>&1; rc=$?
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
  cmake --build "$build" -j "$jobs" --target test_gpu_smoke test_gpu_ops test_gpu_lm 2>&1 | tail -3

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

section "LM training step: kubefit CUDA backend vs PyTorch (B 64 x T 72, E 400, H 1152, 3 layers)"
# bench_lm_gpu (tests/gpu-backend) and its PyTorch peer bench_lm_torch.py time the same step:
# masks, forward + AR/TAR, backward, clip 0.1, Adam. FP32 is the ratio; TF32 rows are extra.
lm=(--vocab "${LM_VOCAB:-60000}" --emb 400 --hidden 1152 --layers 3 --batch 64 --bptt 72
    --steps "${LM_STEPS:-10}" --warmup 2)
py=${KUBEFIT_TOOLS:-$HOME/.cache/kubefit}/venv-torch/bin/python
[ -x "$py" ] || py=python3
[ -n "$prebuilt" ] || cmake --build "$build" -j "$jobs" --target bench_lm_gpu 2>&1 | tail -1
: >"$out/lm-step.jsonl"
for tf32 in "" --tf32; do
  timeout 150 "$bin/bench_lm_gpu" "${lm[@]}" $tf32 2>>"$out/lm-step.err" | \
    tee -a "$out/lm-step.jsonl" || { echo "bench_lm_gpu $tf32 failed (see lm-step.err)"; status=1; }
  timeout 200 "$py" tests/gpu-backend/bench_lm_torch.py "${lm[@]}" $tf32 2>>"$out/lm-step.err" | \
    tee -a "$out/lm-step.jsonl" || echo "bench_lm_torch.py $tf32 did not run (see lm-step.err)"
done
tail -5 "$out/lm-step.err"
ratio=$(python3 - "$out/lm-step.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
print(f"{'backend':<16} {'tf32':>4} {'fwd_ms':>9} {'bwd_ms':>9} {'opt_ms':>8} {'step_ms':>9} {'tok/s':>10} {'loss':>7}",
      file=sys.stderr)
for r in rows:
    print(f"{r['backend']:<16} {r['tf32']:>4} {r['fwd_ms']:>9.2f} {r['bwd_ms']:>9.2f} {r['opt_ms']:>8.2f} "
          f"{r['step_ms']:>9.2f} {r['tokens_per_s']:>10.0f} {r['loss']:>7.3f}", file=sys.stderr)
ours = [r["tokens_per_s"] for r in rows if r["backend"] == "cuda" and r["tf32"] == 0]
theirs = [r["tokens_per_s"] for r in rows if r["backend"].startswith("pytorch") and r["tf32"] == 0]
print(f"{ours[0] / theirs[0]:.3f}" if ours and theirs else "nan")
PY
)

section "result"
echo "gpu.sh exit $status (logs in $out)"
echo "gpu_ratio_vs_pytorch=$ratio"
exit $status
