"""quality_linear: the baselines of bench/quality.sh - the majority class and TF-IDF + logistic
regression (scikit-learn) - on a data set in the trainer's layout (DATA/train.csv, valid.csv:
text + label or labels, ';' between several labels). Prints one JSON line per baseline with the
keys kubefit's metrics.json uses: single-label accuracy, multi-label subsetAccuracy and
labelAccuracy; microF1 and macroF1 (sklearn's f1_score) in both.
  quality_linear.py --data DIR [--threads N]
TF-IDF: words and word bigrams, sublinear tf, min_df 2 (lower-cased). Logistic regression: C
picked by 3-fold cross-validation on the training texts alone (accuracy or micro-F1) from
{1, 3, 10, 30, 100, 300}; liblinear, but a softmax (lbfgs) for more than two classes;
multi-label: one classifier per label (one-vs-rest), a label predicted when its probability >
0.5, like the trainer's default threshold. Labels of valid.csv that training never saw are
dropped, as the trainer does. Majority: the most frequent training label for every text
(multi-label: every label present in more than half of the training texts, none usually)."""
import argparse
import csv
import json
import os
import time

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.multiclass import OneVsRestClassifier
from sklearn.preprocessing import MultiLabelBinarizer


def read(path):
    csv.field_size_limit(1 << 24)
    with open(path, encoding="utf-8", newline="") as f:
        r = csv.DictReader(f)
        col = "labels" if "labels" in r.fieldnames else "label"
        return [(row["text"], [l for l in row[col].split(";") if l]) for row in r]


def scores(multi, y, p):
    if multi:
        return {"subsetAccuracy": float(accuracy_score(y, p)), "labelAccuracy": float((y == p).mean()),
                "microF1": float(f1_score(y, p, average="micro", zero_division=0)),
                "macroF1": float(f1_score(y, p, average="macro", zero_division=0))}
    return {"accuracy": float(accuracy_score(y, p)),
            "microF1": float(f1_score(y, p, average="micro", zero_division=0)),
            "macroF1": float(f1_score(y, p, average="macro", zero_division=0))}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    tr, va = read(os.path.join(a.data, "train.csv")), read(os.path.join(a.data, "valid.csv"))
    multi = any(len(l) != 1 for _, l in tr)
    names = sorted({l for _, ls in tr for l in ls})
    keep = set(names)
    if multi:
        mlb = MultiLabelBinarizer(classes=names)
        ytr = mlb.fit_transform([ls for _, ls in tr])
        yva = mlb.transform([[l for l in ls if l in keep] for _, ls in va])
    else:
        va = [(t, ls) for t, ls in va if ls[0] in keep]  # single-label rows with an unseen label: dropped
        ytr = np.array([ls[0] for _, ls in tr])
        yva = np.array([ls[0] for _, ls in va])

    t0 = time.time()
    if multi:
        maj = np.tile((ytr.mean(0) > 0.5).astype(int), (len(va), 1))
    else:
        vals, counts = np.unique(ytr, return_counts=True)
        maj = np.array([vals[counts.argmax()]] * len(va))
    print(json.dumps({"impl": "majority", **scores(multi, yva, maj), "nValid": len(va), "seconds": time.time() - t0}))

    t0 = time.time()
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)
    xtr = vec.fit_transform([t for t, _ in tr])
    xva = vec.transform([t for t, _ in va])

    multiclass = not multi and len(names) > 2  # liblinear is one-vs-rest only: lbfgs, a softmax

    def model(c):
        lr = (LogisticRegression(C=c, solver="lbfgs", max_iter=3000) if multiclass
              else LogisticRegression(C=c, solver="liblinear", max_iter=1000))
        return OneVsRestClassifier(lr, n_jobs=a.threads) if multi else lr

    def predict(m, x):
        return (m.predict_proba(x) > 0.5).astype(int) if multi else m.predict(x)

    grid = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0)
    folds = (KFold(3, shuffle=True, random_state=0) if multi else StratifiedKFold(3, shuffle=True, random_state=0))
    cv = {}
    for c in grid:
        s = []
        for i, j in folds.split(xtr, None if multi else ytr):
            m = model(c).fit(xtr[i], ytr[i])
            p = predict(m, xtr[j])
            s.append(f1_score(ytr[j], p, average="micro", zero_division=0) if multi else accuracy_score(ytr[j], p))
        cv[c] = float(np.mean(s))
    best = max(grid, key=lambda c: (cv[c], -c))
    m = model(best).fit(xtr, ytr)
    print(json.dumps({"impl": "tfidf-lr", **scores(multi, yva, predict(m, xva)), "C": best,
                      "features": int(xtr.shape[1]), "nValid": len(va), "seconds": time.time() - t0}))


if __name__ == "__main__":
    main()
