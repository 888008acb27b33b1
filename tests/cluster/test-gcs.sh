#!/usr/bin/env bash
# fake-gcs-server through the harness: an object written with the JSON API (media upload) reads
# back identical (alt=media); a resumable upload's Location points back at the emulator; objects
# survive gcs-restart on the same port; with-gcs passes CMD's exit code through and leaves no
# process and no DIR behind.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
fail() { echo "FAIL: $*" >&2; exit 1; }

if [ "${1:-}" = inner ]; then            # runs under with-gcs
  echo "$GCS_DIR" >"$2"
  h=$STORAGE_EMULATOR_HOST bucket=bkt-$RANDOM obj=en/data/train.csv
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  "$here/gcs-up" "$GCS_DIR" "$bucket" 2>/dev/null && fail "gcs-up on a running DIR should refuse"
  code=$(curl -sS -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    -d "{\"name\":\"$bucket\"}" "$h/storage/v1/b?project=test")
  [ "$code" = 200 ] || fail "create bucket: HTTP $code"
  head -c 300000 /dev/urandom >"$tmp/in"
  code=$(curl -sS -o "$tmp/meta" -w '%{http_code}' -X POST -H 'Content-Type: application/octet-stream' \
    --data-binary @"$tmp/in" "$h/upload/storage/v1/b/$bucket/o?uploadType=media&name=en%2Fdata%2Ftrain.csv")
  [ "$code" = 200 ] || fail "media upload: HTTP $code: $(cat "$tmp/meta")"
  grep -q '"size": *"300000"' "$tmp/meta" || fail "upload metadata lacks size 300000: $(cat "$tmp/meta")"
  curl -sSf -o "$tmp/out" "$h/storage/v1/b/$bucket/o/en%2Fdata%2Ftrain.csv?alt=media"
  cmp -s "$tmp/in" "$tmp/out" || fail "downloaded $obj differs from what was uploaded"
  loc=$(curl -sS -D - -o /dev/null -X POST -H 'Content-Type: application/json' -d '{}' \
    "$h/upload/storage/v1/b/$bucket/o?uploadType=resumable&name=r.bin" | tr -d '\r' |
    sed -n 's/^[Ll]ocation: //p')
  case $loc in "$h/"*) ;; *) fail "resumable Location '$loc' does not point at $h" ;; esac
  "$here/gcs-restart" "$GCS_DIR"
  [ "$STORAGE_EMULATOR_HOST" = "$(. "$GCS_DIR/env"; echo "$STORAGE_EMULATOR_HOST")" ] ||
    fail "gcs-restart changed the address"
  curl -sSf -o "$tmp/out2" "$h/storage/v1/b/$bucket/o/en%2Fdata%2Ftrain.csv?alt=media" ||
    fail "object lost across gcs-restart"
  cmp -s "$tmp/in" "$tmp/out2" || fail "object changed across gcs-restart"
  code=$(curl -sS -o /dev/null -w '%{http_code}' "$h/storage/v1/b/$bucket/o/missing?alt=media")
  [ "$code" = 404 ] || fail "missing object: expected 404, got $code"
  echo "inner: ok"
  exit 42
fi

mark=$(mktemp)
trap 'rm -f "$mark"' EXIT
rc=0
"$here/with-gcs" "$0" inner "$mark" || rc=$?
[ "$rc" = 42 ] || fail "with-gcs returned $rc, expected CMD's exit code 42"
dir=$(cat "$mark")
[ -n "$dir" ] || fail "inner part did not run"
left=$(pgrep -af -- "$dir/" || true)
[ -z "$left" ] || fail "processes left after with-gcs: $left"
[ ! -e "$dir" ] || fail "$dir was not removed"
echo "ok: upload/download round trip, resumable Location, restart keeps objects, nothing left behind"
