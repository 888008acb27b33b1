#!/usr/bin/env bash
# test_trainer_cli: kubefit-trainer's contract from the outside (docs/contract.md).
set -uo pipefail
src=${KUBEFIT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${KUBEFIT_BINARY_DIR:-$src/build}
T=$bin/trainer/kubefit-trainer
[ -x "$T" ] || { echo "FAIL: $T not built"; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fails=0 checks=0
ok() { checks=$((checks+1)); if ! eval "$1"; then echo "FAIL: $2"; fails=$((fails+1)); fi; }

# expect CODE DESC -- ARGS...: runs the trainer, checks the exit status.
expect() {
  local code=$1 desc=$2; shift 3
  "$T" "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?
  checks=$((checks+1))
  if [ $rc != "$code" ]; then echo "FAIL: $desc: exit $rc, expected $code"; tail -3 "$tmp/err"; fails=$((fails+1)); fi
}

# Tiny keyword data set: 3 labels, multi-label.
mkdir -p "$tmp/b/en/data"
python3 - "$tmp/b/en/data" <<'PY'
import csv, random, sys
rnd = random.Random(3)
words = "the a of and to in is it for on with as at be this from or by not all can".split()
keys = {"fruit": "apple", "color": "red", "animal": "cat"}
for name, n in (("train", 160), ("valid", 48)):
    with open(f"{sys.argv[1]}/{name}.csv", "w", newline="") as f:
        w = csv.writer(f); w.writerow(["text", "labels"])
        for _ in range(n):
            t = [rnd.choice(words) for _ in range(rnd.randint(5, 20))]
            ls = [k for k in keys if rnd.random() < 0.5] or ["fruit"]
            for k in ls: t.insert(rnd.randrange(len(t)), keys[k])
            w.writerow([" ".join(t), ";".join(ls)])
with open(f"{sys.argv[1]}/corpus.txt", "w") as f:
    for _ in range(100):
        f.write(" ".join(rnd.choice(words + list(keys.values())) for _ in range(15)) + "\n")
PY
B="file://$tmp/b"
small=(--emb-size 16 --hidden-size 24 --layers 2 --batch-size 16 --bptt 16 --max-vocab 500 --threads 2 --lm-epochs 1)

# Command line.
expect 0 "--help" -- --help
ok "grep -q 'predict' $tmp/out && grep -q -- '--bucket-name' $tmp/out" "--help lists commands and flags"
expect 2 "no command" --
expect 2 "unknown command" -- fly --lang en
expect 2 "unknown flag" -- train --lang en --bucket-name "$B" --model-dir m --bogus 1
ok "grep -q \"unknown option '--bogus'\" $tmp/err" "unknown flag is named"
expect 2 "bad number" -- train --lang en --bucket-name "$B" --model-dir m --epochs many --result-file "$tmp/r.json"
ok "grep -q 'epochs: expected an integer' $tmp/err" "bad number is explained"
ok "grep -q '\"reason\":\"BadInput\"' $tmp/r.json" "bad flags leave a Failed/BadInput result"
expect 2 "missing --lang" -- train --bucket-name "$B" --model-dir m
ok "grep -q -- '--lang is required' $tmp/err" "missing --lang is named"
expect 2 "--device cuda without CUDA" -- train --lang en --bucket-name "$B" --model-dir m --device cuda

# Bad input: missing data, malformed CSV.
expect 2 "missing train.csv" -- train --lang fr --bucket-name "$B" --model-dir m --result-file "$tmp/r.json"
ok "grep -q '\"phase\":\"Failed\",\"reason\":\"BadInput\"' $tmp/r.json && grep -q 'fr/data/train.csv' $tmp/r.json" \
   "missing data: result names the file"
mkdir -p "$tmp/bad/en/data"
printf 'text,labels\n"unterminated quote,a\n' > "$tmp/bad/en/data/train.csv"
expect 2 "malformed CSV" -- train --lang en --bucket-name "file://$tmp/bad" --model-dir m --result-file "$tmp/r.json"
ok "grep -q 'train.csv:2' $tmp/r.json" "malformed CSV: result has file:line ($(cat $tmp/r.json))"
expect 2 "predict without a model" -- predict --lang en --bucket-name "$B" --model-dir none

# Preemption and resume: SIGTERM after the first classifier checkpoint -> exit 3 (transient) with
# a Transient result; the next run resumes there and ends with the whole history.
E=24
"$T" train --lang en --bucket-name "$B" --model-dir m --job r --epochs $E "${small[@]}" --lr 0.05 \
  --result-file "$tmp/r1.json" >"$tmp/p1" 2>"$tmp/e1" &
pid=$!
ck="$tmp/b/m/en/r/1/checkpoint.safetensors"
for _ in $(seq 1500); do
  grep -q '"checkpoint saved".*"stage":"classifier"' "$tmp/e1" && break
  kill -0 $pid 2>/dev/null || break
  sleep 0.1
done
kill -TERM $pid 2>/dev/null; wait $pid; rc=$?
ok "[ $rc = 3 ]" "SIGTERM: exit 3 (got $rc)"
ok "grep -q '\"reason\":\"Transient\"' $tmp/r1.json" "SIGTERM: Transient result"
ok "[ -f $ck ]" "checkpoint kept after SIGTERM"
expect 0 "resumed run" -- train --lang en --bucket-name "$B" --model-dir m --job r --epochs $E "${small[@]}" --lr 0.05 --result-file "$tmp/r.json"
ok "grep -q 'resuming from checkpoint' $tmp/err" "the second run resumed"
ok "! grep -q '\"stage\":\"finetune-lm\"' $tmp/out" "no LM epoch repeated after resume"
ok "python3 -c \"import json,sys; h=json.load(open('$tmp/b/m/en/r/1/metrics.json'))['history']; sys.exit(not ([x['stage'] for x in h]==['finetune-lm']+['classifier']*$E and [x['epoch'] for x in h]==[1]+list(range(1,$E+1))))\"" \
   "history is whole after resume (1 LM + $E classifier epochs)"
ok "grep -q '\"phase\":\"Succeeded\"' $tmp/r.json" "resumed run succeeded"
ok "[ ! -f $ck ]" "checkpoint removed at the end"

# evaluate and predict on that model; pretrain writes an LM.
expect 0 "evaluate" -- evaluate --lang en --bucket-name "$B" --model-dir m --job r --batch-size 16 --bptt 16
ok "python3 -c \"import json,sys; e=json.load(open('$tmp/out'))['overall']; m=json.load(open('$tmp/b/m/en/r/1/metrics.json'))['overall']; sys.exit(abs(e['microF1']-m['microF1'])>1e-6)\"" \
   "evaluate = the run's validation metrics"
printf 'a cat and an apple\n\nred\n' > "$tmp/in"
"$T" predict --lang en --bucket-name "$B" --model-dir m --job r --bptt 16 <"$tmp/in" >"$tmp/pred" 2>"$tmp/err"
ok "[ \$(wc -l < $tmp/pred) = 3 ] && grep -q '\"probabilities\"' $tmp/pred" "predict: one JSON line per input line"
expect 0 "pretrain" -- pretrain --lang en --bucket-name "$B" --model-dir m --job pre --epochs 1 "${small[@]}"
ok "[ -f $tmp/b/m/en/pre/1/lm.safetensors ] && [ -f $tmp/b/m/en/pre/1/vocab.txt ]" "pretrain outputs"
# ...and train picks that LM up as the pretrained one.
mkdir -p "$tmp/b/en/pretrained"
cp "$tmp/b/m/en/pre/1/lm.safetensors" "$tmp/b/m/en/pre/1/vocab.txt" "$tmp/b/en/pretrained/"
expect 0 "train from a pretrained LM" -- train --lang en --bucket-name "$B" --model-dir m --job p --epochs 1 "${small[@]}"
ok "grep -q 'pretrained language model loaded' $tmp/err" "pretrained LM used"

echo "$checks checks, $fails failed"
[ $fails = 0 ]
