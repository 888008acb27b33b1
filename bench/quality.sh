#!/usr/bin/env bash
# bench/quality.sh: kubefit-trainer vs fastai on debtags (same train/valid split, same
# vocabulary - ours, built by the same make_vocab rules -, same small AWD-LSTM config, same ULMFiT
# recipe and epochs, random-init LM on both sides). Prints micro-F1, macro-F1 and the per-label
# (Hamming) accuracy of both;
# last line quality_delta_vs_fastai=<ours - theirs> (micro-F1).
#   bench/quality.sh [BUILD_DIR]
# env: DATA (debtags: data/debtags/en; debtags-small for a quick run), EPOCHS (4), LM_EPOCHS (1),
#      EMB (64) HIDDEN (192) LAYERS (2) BS (32) BPTT (72) LR (0.05) LM_LR (0.01) DROP (0.3) THREADS (nproc)
# fastai tokenises with its own spaCy-based tokenizer (rules identical to ours, docs/data.md); the
# vocabulary and everything after it are shared.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
T="$build/trainer/kubefit-trainer"
py="${KUBEFIT_TOOLS:-$HOME/.cache/kubefit}/venv-torch/bin/python"
data=${DATA:-debtags}
E=${EPOCHS:-4} LME=${LM_EPOCHS:-1} EMB=${EMB:-64} HID=${HIDDEN:-192} NL=${LAYERS:-2} BS=${BS:-32}
BPTT=${BPTT:-72} LR=${LR:-0.05} LMLR=${LM_LR:-0.01} DROP=${DROP:-0.3} TH=${THREADS:-$(nproc)}
[ -x "$T" ] || { echo "quality: $T missing" >&2; exit 2; }
[ -f "$root/data/$data/en/data/train.csv" ] || { echo "quality: data/$data missing (hack/make-datasets)" >&2; exit 2; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/b/en/data"
cp "$root/data/$data/en/data/train.csv" "$root/data/$data/en/data/valid.csv" "$tmp/b/en/data/"

"$T" train --lang en --bucket-name "$tmp/b" --model-dir m --epochs "$E" --lm-epochs "$LME" --emb-size "$EMB" \
  --hidden-size "$HID" --layers "$NL" --batch-size "$BS" --bptt "$BPTT" --lr "$LR" --lm-lr "$LMLR" \
  --drop-mult "$DROP" --threads "$TH" --result-file "$tmp/r.json" >/dev/null 2>"$tmp/ours.log" ||
  { echo "quality: kubefit-trainer failed:" >&2; tail -5 "$tmp/ours.log" >&2; exit 1; }
ours=$(python3 -c "import json; o=json.load(open('$tmp/b/m/en/default/1/metrics.json'))['overall']; print(json.dumps(o))")
theirs=$("$py" "$root/bench/quality_fastai.py" --data "$tmp/b/en/data" --vocab "$tmp/b/m/en/default/1/vocab.txt" \
  --emb "$EMB" --hidden "$HID" --layers "$NL" --epochs "$E" --lm-epochs "$LME" --bs "$BS" --bptt "$BPTT" \
  --lr "$LR" --lm-lr "$LMLR" --drop-mult "$DROP" --threads "$TH" 2>"$tmp/fastai.log" | grep '^{"impl"' | tail -1) ||
  { echo "quality: the fastai side failed:" >&2; tail -20 "$tmp/fastai.log" >&2; exit 1; }
python3 - "$ours" "$theirs" <<'PY'
import json, sys
o, t = json.loads(sys.argv[1]), json.loads(sys.argv[2])
for name, m in (("kubefit", o), ("fastai", t)):
    print(f"{name:8} microF1={m['microF1']:.4f} macroF1={m['macroF1']:.4f} labelAccuracy={m['labelAccuracy']:.4f}")
print(f"quality_delta_vs_fastai={o['microF1'] - t['microF1']:+.4f}")
PY
