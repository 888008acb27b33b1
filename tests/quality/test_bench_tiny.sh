#!/usr/bin/env bash
# quality_bench_tiny: bench/quality.sh end to end at CI size - three sets made from debtags-small
# (multi-label: 5 tags; single-label: role::program or not; single-label, four classes; 150
# training and 100 validation texts), one seed, every row (majority, TF-IDF + LR, fastai, kubefit
# random / pretrained / pretrained + LM fine-tuning, the pretrained LM from hack/pretrain-lm
# --profile ci) - checks the table and the last two lines. Needs venv-torch (hack/setup):
# skipped without it, failed under CI.
set -uo pipefail
src=${KUBEFIT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${KUBEFIT_BINARY_DIR:-$src/build}
py="${KUBEFIT_TOOLS:-$HOME/.cache/kubefit}/venv-torch/bin/python"
skip() { if [ "${CI:-}" = true ]; then echo "FAIL: $1 under CI=true"; exit 1; fi; echo "SKIP: $1"; exit 77; }
[ -x "$py" ] || skip "$py missing (hack/setup)"
[ -f "$src/data/debtags-small/en/data/train.csv" ] || skip "data/debtags-small missing (hack/make-datasets)"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { if eval "$1"; then pass=$((pass + 1)); else echo "FAIL: $2"; fail=$((fail + 1)); fi; }
start=$(date +%s)
python3 "$src/tests/quality/tiny_sets.py" "$src/data/debtags-small/en/data" "$tmp/sets" 150 100
"$src/hack/pretrain-lm" en --profile ci --corpus "$src/data/debtags/en/data/corpus.txt" --bucket "$tmp/p" \
  --build "$bin" > /dev/null 2> "$tmp/pre.err" || { echo "FAIL: hack/pretrain-lm: $(tail -3 $tmp/pre.err)"; exit 1; }
SETS="multi/en single/en classes/en" SEEDS=1 DATA="$tmp/sets" PRETRAINED="$tmp/p" OUT="$tmp/out" EPOCHS=2 BS=16 BPTT=24 \
  THREADS=1 "$src/bench/quality.sh" "$bin" > "$tmp/table" 2> "$tmp/err"
rc=$?
cat "$tmp/table"
ok "[ $rc = 0 ]" "bench/quality.sh exit $rc: $(tail -5 $tmp/err)"
for row in "majority class" "TF-IDF + logistic regression" "fastai, random-init LM" "kubefit, random-init LM" \
           "kubefit, pretrained LM " "kubefit, pretrained LM + LM fine-tuning"; do
  for s in multi/en single/en classes/en; do
    ok "grep '^$s ' $tmp/table | grep -F '$row' | grep -Eq ' (microF1|accuracy) +[0-9.]+ +[0-9.]+ '" "a '$row' line for $s"
  done
done
ok "[ \"\$(tail -2 $tmp/table | cut -d= -f1 | tr '\n' ' ')\" = 'quality_delta_vs_fastai quality_delta_vs_linear ' ]" \
   "the last two lines are quality_delta_vs_fastai= and quality_delta_vs_linear="
ok "tail -2 $tmp/table | cut -d= -f2 | grep -Eqx '[+-][0-9]\.[0-9]{4}' && [ \$(tail -2 $tmp/table | cut -d= -f2 | grep -Ecx '[+-][0-9]\.[0-9]{4}') = 2 ]" \
   "both deltas are numbers"
# The linear baseline is no straw man: it learns the multi-label set (micro-F1 well above 0), and
# the four-class one (a softmax: liblinear refuses more than two classes) beats its majority class.
mean() { awk -v s="$1" -v r="$2" 'index($0, s " ") == 1 && index($0, r) {print $(NF-6) + 0}' "$tmp/table"; }
ok "awk 'BEGIN {exit !($(mean multi/en "TF-IDF + logistic") > 0.3)}'" "TF-IDF + LR micro-F1 > 0.3 on multi/en"
ok "awk 'BEGIN {exit !($(mean classes/en "TF-IDF + logistic") > $(mean classes/en "majority class"))}'" \
   "TF-IDF + LR above the majority class on classes/en"
# A second run reuses every stored result (nothing trained again).
SETS="multi/en single/en classes/en" SEEDS=1 DATA="$tmp/sets" PRETRAINED="$tmp/p" OUT="$tmp/out" EPOCHS=2 BS=16 BPTT=24 \
  THREADS=1 "$src/bench/quality.sh" "$bin" > "$tmp/table2" 2> "$tmp/err2"
ok "cmp -s $tmp/table $tmp/table2 && ! grep -q 'kubefit random' $tmp/err2" "a rerun reuses the stored results"
echo "quality_bench_tiny: $(( $(date +%s) - start ))s"
echo "$pass passed, $fail failed"
[ $fail = 0 ]
