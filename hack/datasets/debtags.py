#!/usr/bin/env python3
"""Builds the debtags data sets (see /work/shared/DATA.md, docs/data.md) from decompressed
Debian index files: Packages (Tag, Description-md5) joined with Translation-LANG on
Description-md5. Standard library only.

usage: debtags.py --lists DIR --out DATA_ROOT [--min-docs 50] [--valid-pct 10]
DIR holds Packages and Translation-{en,fr} files already decompressed (*.txt)."""
import argparse, csv, glob, hashlib, os, sys
from collections import Counter


def stanzas(path):
    """Yields dicts of one deb822 file; continuation lines are kept with their newline."""
    cur, key = {}, None
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                if cur:
                    yield cur
                cur, key = {}, None
            elif line[0] in " \t" and key:
                cur[key] += "\n" + line
            else:
                key, _, val = line.partition(":")
                cur[key] = val.strip()
    if cur:
        yield cur


def description_text(raw):
    """Short + long description as plain text: ' .' lines become empty lines."""
    lines = raw.split("\n")
    out = [lines[0].strip()]
    for l in lines[1:]:
        l = l[1:] if l.startswith(" ") else l
        out.append("" if l.strip() == "." else l.rstrip())
    return "\n".join(out).strip()


def bucket(name):
    """0..99 from the package name: stable across runs and machines."""
    return int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) % 100


def write_csv(path, rows):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["text", "labels"])
        for text, tags in rows:
            w.writerow([text, ";".join(tags)])
    os.replace(path + ".tmp", path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lists", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--min-docs", type=int, default=50)
    ap.add_argument("--valid-pct", type=int, default=10)
    ap.add_argument("--small-train", type=int, default=2000)
    ap.add_argument("--small-valid", type=int, default=500)
    a = ap.parse_args()

    # package -> (md5, tags); main suite first so updates/security (same names) do not override.
    pkgs = {}
    for p in sorted(glob.glob(os.path.join(a.lists, "*_Packages.txt")), key=lambda s: ("_bookworm_main_" not in s, s)):
        for st in stanzas(p):
            name, md5 = st.get("Package"), st.get("Description-md5")
            if not name or not md5 or name in pkgs:
                continue
            tags = [t.strip() for t in st.get("Tag", "").replace("\n", " ").split(",") if t.strip()]
            pkgs[name] = (md5, tags)

    report = {}
    for lang in ("en", "fr"):
        descr = {}  # md5 -> text
        for p in sorted(glob.glob(os.path.join(a.lists, f"*_Translation-{lang}.txt"))):
            for st in stanzas(p):
                md5, raw = st.get("Description-md5"), st.get(f"Description-{lang}")
                if md5 and raw and md5 not in descr:
                    descr[md5] = description_text(raw)
        # One document per description (packages sharing a description count once: the first
        # package by name decides the split and the tags).
        docs, seen = [], set()
        for name in sorted(pkgs):
            md5, tags = pkgs[name]
            if md5 in descr and tags and md5 not in seen:
                seen.add(md5)
                docs.append((name, descr[md5], tags))
        count = Counter(t for _, _, tags in docs for t in tags)
        keep = {t for t, c in count.items() if c >= a.min_docs}
        rows = {"train": [], "valid": []}
        for name, text, tags in docs:
            kept = sorted(t for t in tags if t in keep)
            if kept:
                split = "valid" if bucket(name) < a.valid_pct else "train"
                rows[split].append((name, text, kept))
        base = os.path.join(a.out, "debtags", lang, "data")
        for split in rows:
            write_csv(os.path.join(base, f"{split}.csv"), [(t, k) for _, t, k in rows[split]])
        with open(os.path.join(base, "corpus.txt.tmp"), "w", encoding="utf-8") as f:
            for md5 in sorted(descr):
                f.write(" ".join(descr[md5].split()) + "\n")
        os.replace(os.path.join(base, "corpus.txt.tmp"), os.path.join(base, "corpus.txt"))
        n_docs = len(docs)
        per_text = sum(len(t) for _, _, t in docs) / max(n_docs, 1)
        kept_docs = rows["train"] + rows["valid"]
        per_text_kept = sum(len(k) for _, _, k in kept_docs) / max(len(kept_docs), 1)
        report[lang] = (n_docs, len(count), len(keep), per_text, len(rows["train"]),
                        len(rows["valid"]), per_text_kept, len(descr))
        print(f"debtags {lang}: {n_docs} tagged descriptions, {len(count)} tags, {len(keep)} with "
              f">= {a.min_docs} docs, {per_text:.2f} tags per text; kept: train {len(rows['train'])}, "
              f"valid {len(rows['valid'])}, {per_text_kept:.2f} kept tags per text; corpus "
              f"{len(descr)} descriptions", flush=True)
        # The CI-sized slice (tests, demo, the dev cluster's sample bucket): a stable pseudo-random
        # sample, not the first names alphabetically.
        small = os.path.join(a.out, "debtags-small", lang, "data")
        pick = lambda rs, n: sorted(rs, key=lambda r: hashlib.sha256(b"small:" + r[0].encode()).digest())[:n]
        write_csv(os.path.join(small, "train.csv"), [(t, k) for _, t, k in pick(rows["train"], a.small_train)])
        write_csv(os.path.join(small, "valid.csv"), [(t, k) for _, t, k in pick(rows["valid"], a.small_valid)])
        print(f"debtags-small {lang}: train {min(a.small_train, len(rows['train']))}, valid "
              f"{min(a.small_valid, len(rows['valid']))}", flush=True)

    # DATA.md's figures (bookworm): en ~29,400 docs / 598 tags / 233 kept / 3.7 per text;
    # fr ~14,100 / 591 / 197 / 4.9. Warn (do not fail) when far off: the snapshot may differ.
    expect = {"en": (29400, 598, 233, 3.7), "fr": (14100, 591, 197, 4.9)}
    ok = True
    for lang, (d, t, k, p) in expect.items():
        got = report[lang]
        for what, e, g in (("docs", d, got[0]), ("tags", t, got[1]), ("kept tags", k, got[2]), ("tags per text", p, got[3])):
            if not (0.75 * e <= g <= 1.25 * e):
                print(f"WARNING debtags {lang}: {what} {g} far from DATA.md's {e}", file=sys.stderr)
                ok = False
    print("debtags: counts match DATA.md within 25%" if ok else "debtags: counts differ from DATA.md (see warnings)")


if __name__ == "__main__":
    main()
