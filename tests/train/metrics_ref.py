"""Reference side of test_metrics: sklearn's f1/precision/recall, fastai-style (per label) and subset accuracy.

  metrics_ref.py OUT.safetensors
Multi-label: B=97 rows, L=9 labels, random probabilities (one label never true, one never
predicted). Single-label: B=83 rows, L=7 classes (class 6 never appears in truth or prediction).
"""
import sys
import warnings

import numpy as np
import torch
from safetensors.torch import save_file
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

warnings.filterwarnings("ignore")
rng = np.random.default_rng(11)
out = {}

B, L = 97, 9
probs = rng.random((B, L))
truth = (rng.random((B, L)) < 0.3).astype(np.float64)
truth[:, 3] = 0          # never true
truth[:30, 5] = 0        # the first 30 rows are predicted exactly right (subset accuracy > 0)
probs[:30] = 0.05 + 0.9 * truth[:30] + 0.04 * rng.random((30, L))
probs[:, 5] *= 0.49      # never predicted
pred = (probs > 0.5).astype(int)
p, r, f, s = precision_recall_fscore_support(truth.astype(int), pred, average=None, zero_division=0)
out["multi.probs"] = torch.tensor(probs)
out["multi.truth"] = torch.tensor(truth)
out["multi.per_label"] = torch.tensor(np.stack([p, r, f, s.astype(float)]))
out["multi.overall"] = torch.tensor([
    float((pred == truth).mean()),  # fastai accuracy_multi: element-wise
    f1_score(truth.astype(int), pred, average="micro", zero_division=0),
    f1_score(truth.astype(int), pred, average="macro", zero_division=0),
    accuracy_score(truth.astype(int), pred),  # on label matrices: subset (exact match) accuracy
])

B, L = 83, 7
logits = rng.normal(size=(B, L))
logits[:, 6] -= 100
sm = np.exp(logits - logits.max(1, keepdims=True))
sm /= sm.sum(1, keepdims=True)
y = rng.integers(0, 6, size=B)
yp = sm.argmax(1)
labels = sorted(set(y) | set(yp))
p, r, f, s = precision_recall_fscore_support(y, yp, labels=list(range(L)), average=None, zero_division=0)
out["single.probs"] = torch.tensor(sm)
out["single.truth"] = torch.tensor(y.astype(np.float64))
out["single.per_label"] = torch.tensor(np.stack([p, r, f, s.astype(float)]))
out["single.overall"] = torch.tensor([
    accuracy_score(y, yp),
    f1_score(y, yp, average="micro", zero_division=0),
    f1_score(y, yp, average="macro", zero_division=0),   # sklearn default label set
    accuracy_score(y, yp),                               # single-label: the same accuracy
])
save_file({k: v.contiguous() for k, v in out.items()}, sys.argv[1])
