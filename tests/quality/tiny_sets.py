"""tiny_sets: CI-sized benchmark sets from data/debtags-small (hack/make-datasets), standard
library only: multi/en (the 5 most frequent tags), single/en (does the package carry
role::program? yes / no) and classes/en (the first of the 3 most frequent tags it carries, or
none: four classes, as mail/en has six), N_TRAIN and N_VALID texts each; single/en also gets
N_VALID unlabelled texts (corpus.txt: the next training texts), as reviews/en has.
  tiny_sets.py SRC_DIR OUT_ROOT N_TRAIN N_VALID -> OUT_ROOT/{multi,single,classes}/en/data/{train,valid}.csv"""
import csv
import os
import sys
from collections import Counter

src, out, n_train, n_valid = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
csv.field_size_limit(1 << 24)
rows = {}
for split in ("train", "valid"):
    with open(os.path.join(src, f"{split}.csv"), encoding="utf-8", newline="") as f:
        rows[split] = [(r["text"], r["labels"].split(";")) for r in csv.DictReader(f)]
ranked = [t for t, _ in Counter(t for _, ls in rows["train"] for t in ls).most_common(5)]
top = set(ranked)
for split, n in (("train", n_train), ("valid", n_valid)):
    multi = [(t, [l for l in ls if l in top]) for t, ls in rows[split]]
    multi = [r for r in multi if r[1]][:n]
    single = [(t, ["program" if "role::program" in ls else "other"]) for t, ls in rows[split]][:n]
    classes = [(t, [next((c for c in ranked[:3] if c in ls), "none")]) for t, ls in rows[split]][:n]
    for name, rs, col in (("multi", multi, "labels"), ("single", single, "label"), ("classes", classes, "label")):
        d = os.path.join(out, name, "en", "data")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"{split}.csv"), "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["text", col])
            for t, ls in rs:
                w.writerow([t, ";".join(ls)])
with open(os.path.join(out, "single", "en", "data", "corpus.txt"), "w", encoding="utf-8") as f:
    f.write("".join(" ".join(t.split()) + "\n" for t, _ in rows["train"][n_train:n_train + n_valid]))
