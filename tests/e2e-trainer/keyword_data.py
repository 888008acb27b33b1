#!/usr/bin/env python3
"""keyword_data: the trainer tests' tiny multi-label data set. Each text is 5-20 filler words
with a keyword per label inserted (apple -> fruit, red -> color, cat -> animal), each label on
with probability 1/2 (fruit when none is). Writes DIR/train.csv and DIR/valid.csv (text,labels
with ';' between labels) and, with a corpus size, DIR/corpus.txt (15 words per line).
    keyword_data.py DIR SEED N_TRAIN N_VALID [N_CORPUS]"""
import csv
import random
import sys


def main():
    out, seed, n_train, n_valid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    n_corpus = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    rnd = random.Random(seed)
    words = "the a of and to in is it for on with as at be this from or by not all can".split()
    keys = {"fruit": "apple", "color": "red", "animal": "cat"}
    for name, n in (("train", n_train), ("valid", n_valid)):
        with open(f"{out}/{name}.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["text", "labels"])
            for _ in range(n):
                t = [rnd.choice(words) for _ in range(rnd.randint(5, 20))]
                ls = [k for k in keys if rnd.random() < 0.5] or ["fruit"]
                for k in ls:
                    t.insert(rnd.randrange(len(t)), keys[k])
                w.writerow([" ".join(t), ";".join(ls)])
    if n_corpus:
        with open(f"{out}/corpus.txt", "w") as f:
            for _ in range(n_corpus):
                f.write(" ".join(rnd.choice(words + list(keys.values())) for _ in range(15)) + "\n")


if __name__ == "__main__":
    main()
