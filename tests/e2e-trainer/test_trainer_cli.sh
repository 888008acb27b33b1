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
python3 "$src/tests/e2e-trainer/keyword_data.py" "$tmp/b/en/data" 3 160 48 100 || { echo "FAIL: no data"; exit 1; }
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
expect 2 "--device bogus" -- train --lang en --bucket-name "$B" --model-dir m --device bogus
ok "grep -q -- '--device: expected auto, cpu or cuda, got \"bogus\"' $tmp/err" "a bad --device is named"
# (--device cuda without a GPU fails, exit 3 or 2; auto falls back to the CPU: test_trainer_device.sh)
# The stage, label-mode, threshold and input-override flags: bad values are named.
bad() { # bad PATTERN ARGS...: exit 2 and PATTERN in stderr
  local pat=$1; shift
  expect 2 "$*" -- train --lang en --bucket-name "$B" --model-dir m "$@"
  ok "grep -q -- \"$pat\" $tmp/err" "$* is explained ($(tail -c 200 $tmp/err))"
}
bad "--stages: unknown value 'lm'" --stages finetune-lm,lm
bad "--stages: 'classifier' given twice" --stages classifier,classifier
bad "label-mode: expected auto, multi or single" --label-mode both
bad "threshold: expected a number in (0, 1)" --threshold 1
bad "threshold: expected a number in (0, 1)" --threshold 0
bad "threshold: expected a number in (0, 1), got \\\"half\\\"" --threshold half
bad "train-uri: expected a value, got an empty string" --train-uri=
bad "--result-file given twice" --result-file "$tmp/a.json" --result-file "$tmp/b.json"
expect 2 "--lang pt-br" -- train --lang pt-br --bucket-name "$B" --model-dir m
ok "grep -q -- '--lang: language \"pt-br\" must be' $tmp/err" "the CRD's language rule is the trainer's"
expect 2 "--stages with evaluate" -- evaluate --lang en --bucket-name "$B" --model-dir m --stages classifier
ok "grep -q -- '--stages applies to the train command only' $tmp/err" "--stages outside train is explained"

# Bad input: missing data, malformed CSV.
expect 2 "missing train.csv" -- train --lang fr --bucket-name "$B" --model-dir m --result-file "$tmp/r.json"
ok "grep -q '\"phase\":\"Failed\",\"reason\":\"BadInput\"' $tmp/r.json && grep -q 'fr/data/train.csv' $tmp/r.json" \
   "missing data: result names the file"
mkdir -p "$tmp/bad/en/data"
printf 'text,labels\n"unterminated quote,a\n' > "$tmp/bad/en/data/train.csv"
expect 2 "malformed CSV" -- train --lang en --bucket-name "file://$tmp/bad" --model-dir m --result-file "$tmp/r.json"
ok "grep -q 'file://$tmp/bad/en/data/train.csv:2' $tmp/r.json && ! grep -q 'kubefit-' $tmp/r.json" \
   "malformed CSV: result has the input's URI:line, not the local copy ($(cat $tmp/r.json))"
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
expect 0 "train from a pretrained LM" -- train --lang en --bucket-name "$B" --model-dir m --job p --epochs 1 "${small[@]}" --threshold 0.05
ok "grep -q 'pretrained language model loaded' $tmp/err" "pretrained LM used"

# --threshold: predictions follow it (labels = those with p > X), and a model remembers its own.
# (pc THR FILE: every output line's labels are exactly those above THR, rounding aside.)
pc() {
  python3 - "$1" "$2" <<'PY'
import json, sys
thr = float(sys.argv[1]); n = 0
for line in open(sys.argv[2]):
    o = json.loads(line); p = o["probabilities"]
    for k, v in p.items():
        if abs(v - thr) > 1e-3 and (k in o["labels"]) != (v > thr):
            sys.exit(f"{k}: p={v}, threshold {thr}, labels {o['labels']}")
    n += len(o["labels"])
print(n)
PY
}
printf 'a cat and an apple\nred red red\nthe of and\nan apple is red\n' > "$tmp/in"
"$T" predict --lang en --bucket-name "$B" --model-dir m --job r --bptt 16 --threshold 0.05 <"$tmp/in" >"$tmp/lo" 2>"$tmp/err"
"$T" predict --lang en --bucket-name "$B" --model-dir m --job r --bptt 16 --threshold 0.95 <"$tmp/in" >"$tmp/hi" 2>"$tmp/err"
nlo=$(pc 0.05 "$tmp/lo") nhi=$(pc 0.95 "$tmp/hi")
ok "[ -n \"$nlo\" ] && [ -n \"$nhi\" ] && [ \"$nlo\" -gt \"$nhi\" ]" \
   "--threshold 0.05 predicts more labels than 0.95 ($nlo vs $nhi), each by its threshold"
expect 0 "evaluate --threshold" -- evaluate --lang en --bucket-name "$B" --model-dir m --job r --batch-size 16 --bptt 16 --threshold 0.95
ok "python3 -c \"import json,sys; e=json.load(open('$tmp/out')); m=json.load(open('$tmp/b/m/en/r/1/metrics.json')); sys.exit(not (e['threshold']==0.95 and m['threshold']==0.5 and e['overall']['microF1']!=m['overall']['microF1']))\"" \
   "evaluate --threshold 0.95 changes the metrics and says so"
ok "python3 -c \"import json,sys; c=json.load(open('$tmp/b/m/en/p/1/config.json')); m=json.load(open('$tmp/b/m/en/p/1/metrics.json')); sys.exit(not (c['threshold']==0.05 and m['threshold']==0.05 and c['labelMode']=='auto' and c['stages']==['finetune-lm','classifier']))\"" \
   "train --threshold 0.05: config.json and metrics.json record it"
"$T" predict --lang en --bucket-name "$B" --model-dir m --job p --bptt 16 <"$tmp/in" >"$tmp/pred" 2>"$tmp/err"
"$T" predict --lang en --bucket-name "$B" --model-dir m --job p --bptt 16 --threshold 0.5 <"$tmp/in" >"$tmp/p5" 2>"$tmp/err"
nown=$(pc 0.05 "$tmp/pred") n5=$(pc 0.5 "$tmp/p5")
ok "[ -n \"$nown\" ] && [ -n \"$n5\" ] && [ \"$nown\" -gt \"$n5\" ]" \
   "predict without --threshold uses the model's own 0.05 ($nown labels vs $n5 at 0.5)"

# --stages: the LM stages only end with the LM saved and a result saying so; the classifier alone.
expect 0 "--stages finetune-lm" -- train --lang en --bucket-name "$B" --model-dir m --job ft --epochs 1 "${small[@]}" \
  --stages finetune-lm --result-file "$tmp/r.json"
o="$tmp/b/m/en/ft/1"
ok "[ -f $o/lm.safetensors ] && [ -f $o/vocab.txt ] && [ ! -f $o/model.safetensors ]" "--stages finetune-lm: LM and vocab saved, no classifier"
ok "python3 -c \"import json,sys; r=json.load(open('$tmp/r.json')); h=json.load(open('$o/metrics.json'))['history']; sys.exit(not (r['phase']=='Succeeded' and r['stage']=='finetune-lm' and r['modelURI'].endswith('/lm.safetensors') and [x['stage'] for x in h]==['finetune-lm']))\"" \
   "--stages finetune-lm: the result names the stage and the LM ($(cat $tmp/r.json | head -c 300))"
expect 0 "--stages pretrain,finetune-lm" -- train --lang en --bucket-name "$B" --model-dir m --job pf --epochs 1 "${small[@]}" \
  --stages finetune-lm,pretrain
ok "! grep -q 'pretrained language model loaded' $tmp/err" "--stages pretrain: starts from scratch"
ok "python3 -c \"import json,sys; h=json.load(open('$tmp/b/m/en/pf/1/metrics.json'))['history']; sys.exit([x['stage'] for x in h]!=['pretrain','finetune-lm'])\"" \
   "--stages finetune-lm,pretrain runs pretrain, then finetune-lm"
expect 0 "--stages classifier" -- train --lang en --bucket-name "$B" --model-dir m --job c --epochs 1 "${small[@]}" --stages classifier
ok "python3 -c \"import json,sys; h=json.load(open('$tmp/b/m/en/c/1/metrics.json'))['history']; sys.exit([x['stage'] for x in h]!=['classifier'])\" && grep -q 'pretrained language model loaded' $tmp/err" \
   "--stages classifier: the pretrained encoder, no LM epoch"

# --label-mode and the five input overrides: single-label data at non-default paths, an empty bucket.
mkdir -p "$tmp/else" "$tmp/empty"
python3 - "$tmp/else" <<'PY'
import csv, random, sys
rnd = random.Random(5)
words = "the a of and to in is it for on with as at be this from or by not all can".split()
keys = {"fruit": "apple", "color": "red", "animal": "cat"}
for name, n in (("t", 120), ("v", 40)):
    with open(f"{sys.argv[1]}/{name}.csv", "w", newline="") as f:
        w = csv.writer(f); w.writerow(["text", "labels"])
        for _ in range(n):
            k = rnd.choice(list(keys)); t = [rnd.choice(words) for _ in range(rnd.randint(5, 15))]
            t.insert(rnd.randrange(len(t)), keys[k]); w.writerow([" ".join(t), k])
PY
cp "$tmp/b/en/data/corpus.txt" "$tmp/else/c.txt"
cp "$tmp/b/en/pretrained/lm.safetensors" "$tmp/else/p.safetensors"
cp "$tmp/b/en/pretrained/vocab.txt" "$tmp/else/p.vocab"
ov=(--train-uri "file://$tmp/else/t.csv" --valid-uri "$tmp/else/v.csv" --corpus-uri "file://$tmp/else/c.txt"
    --pretrained-uri "file://$tmp/else/p.safetensors" --vocab-uri "file://$tmp/else/p.vocab")
expect 0 "--label-mode single, inputs overridden" -- train --lang en --bucket-name "file://$tmp/empty" --model-dir m --job s \
  --epochs 1 "${small[@]}" --label-mode single "${ov[@]}"
ok "grep -q 'pretrained language model loaded.*else/p.safetensors' $tmp/err" "--pretrained-uri is read"
ok "python3 -c \"import json,sys; c=json.load(open('$tmp/empty/m/en/s/1/config.json')); i=c['inputs']; sys.exit(not (c['multiLabel'] is False and c['labelMode']=='single' and c['nTrain']==120 and c['nValid']==40 and i['train'].endswith('else/t.csv') and i['corpus'].endswith('else/c.txt') and i['vocab'].endswith('else/p.vocab')))\"" \
   "single-label model from the overridden inputs (config.json: $(head -c 400 $tmp/empty/m/en/s/1/config.json 2>/dev/null))"
expect 0 "--label-mode multi forced on single-label data" -- train --lang en --bucket-name "file://$tmp/empty" --model-dir m \
  --job sm --epochs 1 "${small[@]}" --label-mode multi "${ov[@]}" --stages classifier
ok "python3 -c \"import json,sys; sys.exit(json.load(open('$tmp/empty/m/en/sm/1/config.json'))['multiLabel'] is not True)\"" "--label-mode multi: a multi-label model"
expect 2 "--label-mode single on multi-label rows" -- train --lang en --bucket-name "$B" --model-dir m --job x --epochs 1 "${small[@]}" \
  --label-mode single --result-file "$tmp/r.json"
ok "grep -q 'train.csv:[0-9]*: [0-9]* labels on one row, but the label mode is single' $tmp/r.json" \
   "--label-mode single contradicted by the data: the row is named ($(cat $tmp/r.json))"
expect 2 "--train-uri not there" -- train --lang en --bucket-name "$B" --model-dir m --train-uri "file://$tmp/else/none.csv" --result-file "$tmp/r.json"
ok "grep -q 'else/none.csv: not found' $tmp/r.json" "a missing override is named"

echo "$checks checks, $fails failed"
[ $fails = 0 ]
