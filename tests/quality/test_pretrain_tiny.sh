#!/usr/bin/env bash
# quality_pretrain_tiny: hack/pretrain-lm --profile ci (a pretraining TrainingJob through
# `kubefit run -f`, 25,000 words of the Debian descriptions corpus) lands a usable language model
# in BUCKET/en/pretrained/, and reports its size, time and perplexity; a classifier then picks that
# model up. Also: `train --stages pretrain` needs no labelled texts (corpus.txt alone), a run with
# the classifier still does.
set -uo pipefail
src=${KUBEFIT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${KUBEFIT_BINARY_DIR:-$src/build}
corpus=$src/data/debtags/en/data/corpus.txt
if [ ! -f "$corpus" ] || [ ! -f "$src/data/debtags-small/en/data/train.csv" ]; then
  if [ "${CI:-}" = true ]; then echo "FAIL: $corpus missing under CI=true (make data)"; exit 1; fi
  echo "SKIP: $corpus missing (hack/make-datasets)"; exit 77
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT; [ -z "${KEEP:-}" ] || trap - EXIT
pass=0 fail=0
ok() { if eval "$1"; then pass=$((pass + 1)); else echo "FAIL: $2"; fail=$((fail + 1)); fi; }

start=$(date +%s)
"$src/hack/pretrain-lm" en --profile ci --corpus "$corpus" --bucket "$tmp/b" --build "$bin" > "$tmp/out" 2> "$tmp/err"
rc=$?
ok "[ $rc = 0 ]" "hack/pretrain-lm exit $rc: $(tail -3 "$tmp/err")"
ok "[ -s $tmp/b/en/pretrained/lm.safetensors ] && [ -s $tmp/b/en/pretrained/vocab.txt ]" "model and vocabulary in BUCKET/en/pretrained/"
ppl=$(sed -n 's/^pretrain_perplexity=//p' "$tmp/out")
# 1008 tokens: a uniform guess has perplexity 1008; one epoch over 25,000 words must beat it well.
ok "python3 -c 'import sys; p=float(\"$ppl\"); sys.exit(not (1 < p < 500))'" "perplexity '$ppl' in (1, 500)"
ok "grep -q 'training tokens' $tmp/out && grep -q 'wall' $tmp/out" "the summary states tokens and time: $(head -1 $tmp/out)"
ok "python3 -c \"import json,sys; r=json.load(open('$tmp/b/en/pretrained/pretrain.json')); sys.exit(not (r['tokensPerEpoch'] > 20000 and r['epochs'] == 1 and r['vocab'] > 100))\"" \
   "pretrain.json: tokens, epochs, vocabulary"
ok "grep -q 'stages: \[pretrain\]' $tmp/b/models/en/pretrain-en/1/trainingjob.yaml" "the TrainingJob is kept with the model"

# The trainer: an LM-only train run reads corpus.txt alone; a run with the classifier needs train.csv.
T=$bin/trainer/kubefit-trainer
mkdir -p "$tmp/c/en/data" && head -300 "$corpus" > "$tmp/c/en/data/corpus.txt"
small=(--emb-size 8 --hidden-size 16 --layers 1 --max-vocab 300 --batch-size 8 --bptt 16 --threads 1 --epochs 1)
"$T" train --lang en --bucket-name "$tmp/c" --model-dir m --stages pretrain "${small[@]}" --result-file "$tmp/r1.json" >/dev/null 2>"$tmp/e1"
rc=$?
ok "[ $rc = 0 ] && [ -s $tmp/c/m/en/default/1/lm.safetensors ]" "train --stages pretrain on corpus.txt alone: exit $rc $(tail -1 $tmp/e1)"
"$T" train --lang en --bucket-name "$tmp/c" --model-dir m --job j2 --stages pretrain,classifier "${small[@]}" --result-file "$tmp/r2.json" >/dev/null 2>"$tmp/e2"
rc=$?
ok "[ $rc = 2 ] && grep -q train.csv $tmp/e2" "train with the classifier and no train.csv: exit 2 naming train.csv (got $rc)"

# A classifier picks the pretrained model up (vocabularies matched by token).
python3 "$src/tests/quality/tiny_sets.py" "$src/data/debtags-small/en/data" "$tmp/sets" 200 50
mkdir -p "$tmp/b/en/data" && cp "$tmp/sets/multi/en/data/train.csv" "$tmp/b/en/data/"
"$T" train --lang en --bucket-name "$tmp/b" --model-dir m2 --stages classifier --epochs 1 --batch-size 8 --bptt 16 \
  --threads 1 --result-file "$tmp/r3.json" >/dev/null 2>"$tmp/e3"
rc=$?
ok "[ $rc = 0 ] && grep -q 'pretrained language model loaded' $tmp/e3" "a classifier on the pretrained LM: exit $rc"
echo "quality_pretrain_tiny: $(( $(date +%s) - start ))s"
echo "$pass passed, $fail failed"
[ $fail = 0 ]
