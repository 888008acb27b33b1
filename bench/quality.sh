#!/usr/bin/env bash
# bench/quality.sh: does ULMFiT in kubefit beat what a skeptic would try first? On each data set
# (docs/quality.md: single-label sentiment and e-mail, multi-label debtags en and fr; built by
# hack/make-quality-data) and several seeds, six rows:
#   majority        the most frequent training label
#   tfidf-lr        TF-IDF (word 1-2 grams) + logistic regression, C by 3-fold CV (scikit-learn)
#   fastai          fastai's ULMFiT classifier, encoder from random weights (the recipe below)
#   random          kubefit-trainer, the same recipe, encoder from random weights
#   pretrained      kubefit-trainer, the encoder of the pretrained LM (hack/pretrain-lm)
#   pretrained-ft   kubefit-trainer, the pretrained LM fine-tuned first (LM_EPOCHS at LM_LR) on the
#                   task's texts, labels unused, and on the set's unlabelled texts when it has
#                   some (DATA/SET/LANG/data/corpus.txt): ULMFiT's full recipe; then the classifier
# Same vocabulary (ours: fastai reads the random row's vocab.txt), same model size (the
# pretrained LM's), same classifier recipe (gradual unfreezing over EPOCHS, lr LR, batch BS, BPTT,
# drop-mult DROP) in kubefit and fastai, each on THREADS threads. Prints one line per data set
# and row: the primary metric (single-label accuracy, multi-label micro-F1) as mean, spread
# (sample standard deviation over seeds) and min..max, macro-F1, wall and CPU seconds per run;
# last lines quality_delta_vs_fastai=<mean over data sets of kubefit random - fastai> and
# quality_delta_vs_linear=<mean over data sets of kubefit's best pretrained row - TF-IDF + LR>.
#   bench/quality.sh [BUILD_DIR]
# env: SETS ("reviews/en mail/en debtags/en debtags/fr"; spam/en is built too), SEEDS ("1 2 3"),
#      ROWS ("majority tfidf-lr fastai random pretrained pretrained-ft"),
#      DATA (data/quality: SET/LANG/data/{train,valid}.csv), PRETRAINED (out/pretrain/bucket:
#      LANG/pretrained/{lm.safetensors,vocab.txt}), OUT (out/quality: one JSON per set, row and
#      seed; results already there are reused, FRESH=1 recomputes), EPOCHS (12) LM_EPOCHS (3)
#      BS (32) BPTT (72) LR (0.2) LM_LR (0.01) DROP (0.3) THREADS (2); EMB HIDDEN LAYERS (64 192
#      2) only without a pretrained LM. Rows that need a missing pretrained LM are skipped (said).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
T="$build/trainer/kubefit-trainer"
py="${KUBEFIT_TOOLS:-$HOME/.cache/kubefit}/venv-torch/bin/python"
SETS=${SETS:-"reviews/en mail/en debtags/en debtags/fr"} SEEDS=${SEEDS:-"1 2 3"}
ROWS=${ROWS:-"majority tfidf-lr fastai random pretrained pretrained-ft"}
data=${DATA:-$root/data/quality} pre=${PRETRAINED:-$root/out/pretrain/bucket} out=${OUT:-$root/out/quality}
E=${EPOCHS:-12} LME=${LM_EPOCHS:-3} BS=${BS:-32} BPTT=${BPTT:-72} LR=${LR:-0.2} LMLR=${LM_LR:-0.01}
DROP=${DROP:-0.3} TH=${THREADS:-2}
rep="python3 $root/bench/quality_report.py"
[ -x "$T" ] || { echo "quality: $T missing" >&2; exit 2; }
[ -x "$py" ] || { echo "quality: $py missing (hack/setup)" >&2; exit 2; }
has() { [[ " $ROWS " == *" $1 "* ]]; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for set in $SETS; do
  lang=${set#*/} dir="$data/$set/data" res="$out/${set//\//_}"
  [ -f "$dir/train.csv" ] && [ -f "$dir/valid.csv" ] || { echo "quality: $dir missing (hack/make-quality-data)" >&2; exit 2; }
  mkdir -p "$res"
  lm="$pre/$lang/pretrained/lm.safetensors" voc="$pre/$lang/pretrained/vocab.txt"
  if [ -f "$lm" ]; then read -r EMB HID NL < <($rep dims "$lm"); else EMB=${EMB:-64} HID=${HIDDEN:-192} NL=${LAYERS:-2}; fi
  if (has majority || has tfidf-lr) && { [ -n "${FRESH:-}" ] || [ ! -f "$res/tfidf-lr-seed0.json" ]; }; then
    echo "quality: $set: majority, TF-IDF + LR" >&2
    "$py" "$root/bench/quality_linear.py" --data "$dir" --threads "$TH" > "$tmp/lin.jsonl"
    python3 - "$tmp/lin.jsonl" "$res" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    m = json.loads(line)
    json.dump(m, open(f"{sys.argv[2]}/{m['impl']}-seed0.json", "w"))
PY
  fi
  for seed in $SEEDS; do
    common=(--lang "$lang" --model-dir m --epochs "$E" --batch-size "$BS" --bptt "$BPTT" --lr "$LR"
            --drop-mult "$DROP" --threads "$TH" --seed "$seed" --device cpu)
    for row in random pretrained pretrained-ft; do
      want=0; has "$row" && want=1
      [ "$row" = random ] && has fastai && want=1  # fastai reads the random row's vocabulary
      [ $want = 1 ] || continue
      f="$res/$row-seed$seed.json"
      if [ -z "${FRESH:-}" ] && [ -f "$f" ] && { [ "$row" != random ] || [ -f "$res/vocab-seed$seed.txt" ]; }; then
        continue
      fi
      extra=(--stages classifier --emb-size "$EMB" --hidden-size "$HID" --layers "$NL")
      if [ "$row" != random ]; then
        [ -f "$lm" ] || { echo "quality: $set: no pretrained LM in $pre/$lang/pretrained: row $row skipped" >&2; continue; }
        extra=(--pretrained-uri "$lm" --vocab-uri "$voc" --stages classifier)
        [ "$row" = pretrained ] || extra=(--pretrained-uri "$lm" --vocab-uri "$voc" --stages finetune-lm,classifier
                                          --lm-epochs "$LME" --lm-lr "$LMLR")
      fi
      echo "quality: $set: kubefit $row, seed $seed" >&2
      b="$tmp/b-$row" && rm -rf "$b" && mkdir -p "$b/$lang/data" && cp "$dir/train.csv" "$dir/valid.csv" "$b/$lang/data/"
      [ "$row" != pretrained-ft ] || [ ! -f "$dir/corpus.txt" ] || cp "$dir/corpus.txt" "$b/$lang/data/"
      $rep run "$tmp/t.json" -- "$T" train --bucket-name "$b" "${common[@]}" "${extra[@]}" --result-file "$tmp/r.json" \
        >/dev/null 2>"$tmp/k.log" || { echo "quality: kubefit-trainer failed ($set $row $seed):" >&2; tail -5 "$tmp/k.log" >&2; exit 1; }
      python3 - "$b/m/$lang/default/1/metrics.json" "$tmp/t.json" "$f" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))["overall"]
m.update(json.load(open(sys.argv[2])), impl="kubefit")
json.dump(m, open(sys.argv[3], "w"))
PY
      [ "$row" != random ] || cp "$b/m/$lang/default/1/vocab.txt" "$res/vocab-seed$seed.txt"
    done
    if has fastai && { [ -n "${FRESH:-}" ] || [ ! -f "$res/fastai-seed$seed.json" ]; }; then
      echo "quality: $set: fastai, seed $seed" >&2
      "$py" "$root/bench/quality_fastai.py" --data "$dir" --vocab "$res/vocab-seed$seed.txt" --emb "$EMB" \
        --hidden "$HID" --layers "$NL" --epochs "$E" --lm-epochs 0 --bs "$BS" --bptt "$BPTT" --lr "$LR" \
        --drop-mult "$DROP" --seed "$seed" --threads "$TH" > "$tmp/fa.out" 2>"$tmp/fa.log" ||
        { echo "quality: the fastai side failed ($set $seed):" >&2; tail -20 "$tmp/fa.log" >&2; exit 1; }
      grep '^{"impl"' "$tmp/fa.out" | tail -1 > "$res/fastai-seed$seed.json"
    fi
  done
done
$rep table "$out" "$SETS" "$ROWS"
