#!/usr/bin/env bash
# bench/trainer-cpu.sh: our CPU trainer vs the same model in PyTorch (fastai's AWD-LSTM), same
# threads, same shapes: tokens/s of a full LM training step (dropout masks + forward + CE/AR/TAR
# loss + backward + Adam step). Two sizes: small (emb 64, hidden 192, 2 layers, V 4000) and
# fastai's default (emb 400, hidden 1152, 3 layers, V 8000); B 32, T 70.
#   bench/trainer-cpu.sh [BUILD_DIR]      env: THREADS (default nproc), STEPS (5), BF16 (0)
# Last line: ratio_vs_pytorch=<our tokens/s / theirs> at the default size, float32 (> 1: we are
# faster). BF16=1 adds a line per size with both sides in bf16: ours --precision bf16 (AMX,
# float32 master weights), PyTorch under torch.autocast("cpu", bfloat16); the last line stays
# the float32 ratio.
# ours: bench/trainer-step/bench_step (fastai Adam); theirs: bench/trainer-cpu/torch_lm.py --adam
# (torch.optim.Adam: the same arithmetic per element). On a shared machine compare cpu_ms too.
# It first says what each side computes with: the CPU and its vector features, kubefit's product
# kernels (trainer/nn/gemm_cpu.c; KUBEFIT_GEMM=avx512|avx2|c|openblas picks one) and PyTorch's
# (ATen capability, BLAS, oneDNN, and whether its LSTM ran on oneDNN).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
py="${KUBEFIT_TOOLS:-$HOME/.cache/kubefit}/venv-torch/bin/python"
threads=${THREADS:-$(nproc)}
steps=${STEPS:-5}
ours="$build/bench/trainer-step/bench_step"
[ -x "$ours" ] || { echo "trainer-cpu: $ours missing (cmake --build $build --target bench_step)" >&2; exit 2; }
[ -x "$py" ] || { echo "trainer-cpu: $py missing (hack/setup)" >&2; exit 2; }

field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }
model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
flags=$(sed -n 's/^flags[[:space:]]*: //p' /proc/cpuinfo | head -1 | tr ' ' '\n' |
  grep -xE 'avx2|fma|avx512f|avx512bw|avx512vl|avx512_bf16|avx512_fp16|amx_bf16' | tr '\n' ' ')
echo "cpu: ${model:-unknown}, $(nproc) cores, features: ${flags:-none}; OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}; load $(cut -d' ' -f1-3 /proc/loadavg)"
ratio=""
for size in small default; do
  case $size in
    small) args=(--vocab 4000 --emb 64 --hidden 192 --layers 2 --batch 32 --bptt 70) ;;
    default) args=(--vocab 8000 --emb 400 --hidden 1152 --layers 3 --batch 32 --bptt 70) ;;
  esac
  a=$("$ours" "${args[@]}" --steps "$steps" --warmup 1 --threads "$threads")
  b=$("$py" "$root/bench/trainer-cpu/torch_lm.py" "${args[@]}" --steps "$steps" --warmup 1 --threads "$threads" --adam)
  ta=$(field "$a" tokens_per_s); tb=$(field "$b" tokens_per_s)
  ca=$(field "$a" cpu_ms); cb=$(field "$b" cpu_ms)
  if [ "$size" = small ]; then
    echo "kernels: kubefit gemm=$(field "$a" gemm) (own micro-kernels); pytorch $(field "$b" torch): cpu_capability=$(field "$b" cpu_capability), blas=$(field "$b" blas), onednn=$(field "$b" onednn), lstm=$(field "$b" lstm)"
  fi
  r=$(python3 -c "print(f'{$ta/$tb:.3f}')")
  rc=$(python3 -c "print(f'{$cb/$ca:.3f}')")
  echo "$size: kubefit ${ta} tokens/s (cpu ${ca} ms/step), pytorch ${tb} tokens/s (cpu ${cb} ms/step), threads $threads: ratio ${r} (by CPU time ${rc})"
  ratio=$r
  if [ "${BF16:-0}" = 1 ]; then
    if a16=$("$ours" "${args[@]}" --steps "$steps" --warmup 1 --threads "$threads" --precision bf16 2>/dev/null); then
      b16=$("$py" "$root/bench/trainer-cpu/torch_lm.py" "${args[@]}" --steps "$steps" --warmup 1 --threads "$threads" --adam --bf16)
      ta=$(field "$a16" tokens_per_s); tb=$(field "$b16" tokens_per_s)
      ca=$(field "$a16" cpu_ms); cb=$(field "$b16" cpu_ms)
      echo "$size bf16: kubefit gemm=$(field "$a16" gemm) ${ta} tokens/s (cpu ${ca} ms/step), pytorch autocast ${tb} tokens/s (cpu ${cb} ms/step): ratio $(python3 -c "print(f'{$ta/$tb:.3f}')") (by CPU time $(python3 -c "print(f'{$cb/$ca:.3f}')"))"
    else
      echo "$size bf16: kubefit has no bf16 products on this CPU (AMX-BF16)"
    fi
  fi
done
echo "ratio_vs_pytorch=$ratio"
