#!/usr/bin/env python3
"""demo_slice: the bucket of the local demo (make demo) from a debtags set built by
hack/make-datasets: the K most frequent tags of the training texts, then a stable
pseudo-random sample of texts that keep at least one of them (by a hash of the text, so every
machine gets the same slice). Standard library only.

usage: demo_slice.py SRC_DIR OUT_DIR LABELS N_TRAIN N_VALID
  SRC_DIR holds train.csv and valid.csv (text,labels with ';' between labels);
  OUT_DIR gets train.csv and valid.csv with the same columns."""
import csv
import hashlib
import os
import sys
from collections import Counter


def main():
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    src, out, k, n_train, n_valid = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    csv.field_size_limit(1 << 24)
    rows = {}
    for split in ("train", "valid"):
        with open(os.path.join(src, f"{split}.csv"), encoding="utf-8", newline="") as f:
            rows[split] = [(r["text"], r["labels"].split(";")) for r in csv.DictReader(f)]
    count = Counter(t for _, tags in rows["train"] for t in tags)
    keep = {t for t, _ in sorted(count.items(), key=lambda x: (-x[1], x[0]))[:k]}
    os.makedirs(out, exist_ok=True)
    for split, n in (("train", n_train), ("valid", n_valid)):
        kept = [(text, [t for t in tags if t in keep]) for text, tags in rows[split]]
        kept = [r for r in kept if r[1]]
        kept.sort(key=lambda r: hashlib.sha256(b"demo:" + r[0].encode()).digest())
        with open(os.path.join(out, f"{split}.csv.tmp"), "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["text", "labels"])
            for text, tags in kept[:n]:
                w.writerow([text, ";".join(tags)])
        os.replace(os.path.join(out, f"{split}.csv.tmp"), os.path.join(out, f"{split}.csv"))
        print(f"demo_slice: {split}: {min(n, len(kept))} texts, {len(keep)} labels", file=sys.stderr)


if __name__ == "__main__":
    main()
