#!/usr/bin/env bash
# test_quickstart: runs every command of docs/quickstart.md, in order, in one shell, as a reader
# would type them (quickstart_script.py), in a scratch copy of the repository's layout (Makefile,
# hack/, examples/, crds/, docs/ and data/ linked; build-demo/ = the build under test, so make demo
# builds nothing), with DEMO_PROFILE=ci (hack/demo: a tiny slice, 2 epochs). Needs data/debtags
# (make test builds it first; KUBEFIT_ALLOW_SKIP=1 turns its absence into a skip).
set -uo pipefail
src=${KUBEFIT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${KUBEFIT_BINARY_DIR:-$src/build}
doc=$src/docs/quickstart.md
for f in "$bin/cli/kubefit" "$bin/trainer/kubefit-trainer" "$doc"; do
  [ -e "$f" ] || { echo "FAIL: $f is missing"; exit 1; }
done
if [ ! -f "$src/data/debtags/en/data/train.csv" ]; then
  [ "${KUBEFIT_ALLOW_SKIP:-0}" = 1 ] && { echo "SKIP: no data/debtags (hack/make-datasets)"; exit 77; }
  echo "FAIL: data/debtags/en is missing (hack/make-datasets builds it)"; exit 1
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
export TMPDIR=$tmp   # kubefit run's default work folders go here too
ws=$tmp/kubefit
mkdir -p "$ws"
for f in Makefile hack examples crds docs data; do ln -s "$src/$f" "$ws/$f"; done
ln -s "$bin" "$ws/build-demo"
python3 "$src/tests/cli/quickstart_script.py" "$doc" >"$tmp/run.sh" || { echo "FAIL: cannot read $doc"; exit 1; }
n=$(grep -c '^rc=' "$tmp/run.sh")
[ "$n" -ge 6 ] || { echo "FAIL: only $n commands in $doc"; exit 1; }
export DEMO_PROFILE=ci MAKEFLAGS= JOBS=2
cd "$ws" && bash "$tmp/run.sh" </dev/null 2>&1
