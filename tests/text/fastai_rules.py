#!/usr/bin/env python3
"""Reference for the C rules: applies fastai's OWN rule functions (fastai.text.core) to each
string of a corpus (JSON lines, one JSON string per line) and writes, per string, the output of
every rule in fastai's default order (each rule fed the previous rule's output), and the post
rule replace_space on a token list.
Then the same for N_RANDOM seeded random strings drawn from an alphabet of the characters the
rules care about (they find the corner cases a hand-written corpus misses).
usage: fastai_rules.py CORPUS.jsonl OUT.jsonl [N_RANDOM]"""
import json, random, sys

from collections import Counter

from fastai.text.core import defaults, replace_space
from fastai.text.data import make_vocab

rules = list(defaults.text_proc_rules)
post = list(defaults.text_postproc_rules)
names = [r.__name__ for r in rules]
assert names == ["fix_html", "replace_rep", "replace_wrep", "spec_add_spaces", "rm_useless_spaces",
                 "replace_all_caps", "replace_maj", "lowercase"], names
assert [p.__name__ for p in post] == ["replace_space"], post

ALPHABET = (list("aAbBzZ  \t\n\r&#;/\\<>.@-'!x0123456789") +
            ["amp;", "&amp;", "&lt;", "&#39;", "&#x41;", "&#128;", "&eacute", "&notin;", "nbsp;", "quot;",
             "<br />", "\\n", '\\"', "<unk>", " @.@ ", " @-@ ", "...", "word", "Word", "WORD", "ab",
             "É", "é", "Σ", "ς", "İ", "ß", "\u0301", "😀", "\u00a0", "\u2028", "\u3000", "ǅ", "x x x",
             "go go", "xxbos", "Ⅻ", "٣", "_", "l'", "’"])


def strings():
    with open(sys.argv[1], encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)
    rnd = random.Random(20261126)
    for _ in range(int(sys.argv[3]) if len(sys.argv) > 3 else 0):
        yield "".join(rnd.choice(ALPHABET) for _ in range(rnd.randint(0, 24)))


docs = []
with open(sys.argv[2], "w", encoding="utf-8") as out:
    for s in strings():
        steps, t = [], s
        for r in rules:
            t = r(t)
            steps.append(t)
        # token level: a token list with embedded spaces (spaCy can emit such tokens)
        toks = [s, s.strip(), *s.split("\n"), " ", "a b"]
        out.write(json.dumps({"in": s, "steps": steps, "toks": toks,
                              "post": [replace_space(x) for x in toks]}, ensure_ascii=False) + "\n")
        docs.append(t.split())
    # make_vocab on the rule outputs split on whitespace (the same token lists go to the C side)
    count = Counter(p for d in docs for p in d)
    for min_freq, max_vocab in ((3, 60000), (2, 100), (1, 37), (5, 64)):
        vocab = make_vocab(count, min_freq=min_freq, max_vocab=max_vocab)
        out.write(json.dumps({"make_vocab": {"min_freq": min_freq, "max_vocab": max_vocab,
                                             "vocab": vocab}}, ensure_ascii=False) + "\n")
print(f"fastai_rules: {len(names)} rules applied", file=sys.stderr)
