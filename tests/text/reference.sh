#!/usr/bin/env bash
# reference test: our fastai rules against fastai's own functions on tests/text/rules_corpus.jsonl.
# Fails (never skips) when venv-torch is missing: the comparison is the point of the test.
set -euo pipefail
src=${KUBEFIT_SOURCE_DIR:?}; bin=${KUBEFIT_BINARY_DIR:?}
py=${KUBEFIT_TOOLS:-$HOME/.cache/kubefit}/venv-torch/bin/python
if [ ! -x "$py" ]; then
  echo "FAIL: $py is missing (run hack/setup): cannot compare with fastai" >&2
  exit 1
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
# The character tables must come from the Python fastai runs on (same Unicode, same html5 table).
"$py" "$src/trainer/text/gen_tables.py" > "$tmp/unicode_tables.c"
if ! cmp -s "$tmp/unicode_tables.c" "$src/trainer/text/unicode_tables.c"; then
  echo "FAIL: trainer/text/unicode_tables.c is stale for $("$py" -V); regenerate with gen_tables.py" >&2
  exit 1
fi
"$py" "$src/tests/text/fastai_rules.py" "$src/tests/text/rules_corpus.jsonl" "$tmp/expected.jsonl" 3000 ||
  { echo "FAIL: fastai reference run failed (is fastai installed in venv-torch?)" >&2; exit 1; }
"$bin/tests/text/check_rules" "$tmp/expected.jsonl"
