"""quality_fastai: fastai's ULMFiT on the same data, vocabulary and recipe as kubefit-trainer, for
bench/quality.sh. Prints one JSON line with labelAccuracy (element-wise, accuracy_multi), subsetAccuracy, microF1,
macroF1 on valid.csv.
  quality_fastai.py --data BUCKET/LANG/data --vocab OUR_VOCAB.txt [--emb E --hidden H --layers NL
                    --epochs N --lm-epochs N --lr X --lm-lr X --bs B --bptt T --drop-mult X
                    --seed S --threads T]
Recipe (as kubefit's fit.c): LM fit_one_cycle(lm_epochs, lm_lr) unfrozen from random weights on
train+valid texts (10% held out); classifier with the LM's encoder: freeze_to(-1) 1 epoch at lr,
freeze_to(-2) 1 at lr/2, freeze_to(-3) 1 at lr/4, unfrozen N-3 at lr/20 (N < 4: first and last
phases), slices with factor 2.6 per group, moms (0.8, 0.7, 0.8).
"""
import argparse
import json
import os
import shutil
import tempfile

import numpy as np
import pandas as pd
import torch
from fastai.text.all import (AWD_LSTM, ColReader, ColSplitter, DataBlock, MultiCategoryBlock, TextBlock, TextDataLoaders, awd_lstm_clas_config, awd_lstm_lm_config,
                             language_model_learner, set_seed, text_classifier_learner)

ap = argparse.ArgumentParser()
ap.add_argument("--data", required=True)
ap.add_argument("--vocab", required=True)
for k, d in (("emb", 400), ("hidden", 1152), ("layers", 3), ("epochs", 4), ("lm-epochs", 1), ("bs", 64),
             ("bptt", 72), ("seed", 42), ("threads", 0)):
    ap.add_argument("--" + k, type=int, default=d)
for k, d in (("lr", 2e-2), ("lm-lr", 1e-2), ("drop-mult", 0.5)):
    ap.add_argument("--" + k, type=float, default=d)
a = ap.parse_args()
if a.threads:
    torch.set_num_threads(a.threads)
set_seed(a.seed)
vocab = [l.rstrip("\n") for l in open(a.vocab, encoding="utf-8")]
tr = pd.read_csv(os.path.join(a.data, "train.csv"), keep_default_na=False)
va = pd.read_csv(os.path.join(a.data, "valid.csv"), keep_default_na=False)
tr["is_valid"], va["is_valid"] = False, True
df = pd.concat([tr, va], ignore_index=True)

lm_cfg = dict(awd_lstm_lm_config, emb_sz=a.emb, n_hid=a.hidden, n_layers=a.layers)
dls_lm = TextDataLoaders.from_df(df, text_col="text", is_lm=True, valid_pct=0.1, text_vocab=vocab, bs=a.bs,
                                 seq_len=a.bptt, seed=a.seed, device="cpu")
work = tempfile.mkdtemp(prefix="kf-quality-")  # fastai saves the encoder under path/models
lm = language_model_learner(dls_lm, AWD_LSTM, config=lm_cfg, pretrained=False, drop_mult=a.drop_mult, path=work)
if a.lm_epochs > 0:
    lm.fit_one_cycle(a.lm_epochs, a.lm_lr)
lm.save_encoder("kf_enc")

clas_cfg = dict(awd_lstm_clas_config, emb_sz=a.emb, n_hid=a.hidden, n_layers=a.layers)
# Labels of valid.csv that training never saw are dropped, as kubefit does (ds_relabel).
train_labels = sorted({l for s in tr["labels"] for l in s.split(";") if l})
keep = set(train_labels)
df["labs"] = [[l for l in s.split(";") if l in keep] for s in df["labels"]]
dblock = DataBlock(blocks=(TextBlock.from_df("text", vocab=dls_lm.vocab, seq_len=a.bptt),
                           MultiCategoryBlock(vocab=train_labels)),
                   get_x=ColReader("text"), get_y=ColReader("labs"), splitter=ColSplitter("is_valid"))
dls = dblock.dataloaders(df, bs=a.bs, seq_len=a.bptt, device="cpu")
learn = text_classifier_learner(dls, AWD_LSTM, config=clas_cfg, pretrained=False, drop_mult=a.drop_mult,
                                seq_len=a.bptt, path=lm.path)
learn.load_encoder("kf_enc")
moms = (0.8, 0.7, 0.8)
G = len(learn.opt.param_lists) if learn.opt else a.layers + 2
plan = {1: [(-1, 1, 1.0)], 2: [(-1, 1, 1.0), (0, 1, 0.05)], 3: [(-1, 1, 1.0), (-2, 1, 0.5), (0, 1, 0.05)]}
phases = plan.get(a.epochs, [(-1, 1, 1.0), (-2, 1, 0.5), (-3, 1, 0.25), (0, a.epochs - 3, 0.05)])
for i, (fz, n, mult) in enumerate(phases):
    learn.freeze_to(fz)
    hi = a.lr * mult
    learn.fit_one_cycle(n, hi if i == 0 else slice(hi / 2.6 ** (a.layers + 1), hi), moms=moms)
probs, targs = learn.get_preds()
pred = (probs.numpy() > 0.5)
t = targs.numpy() > 0.5
tp = (pred & t).sum(0).astype(float); fp = (pred & ~t).sum(0).astype(float); fn = (~pred & t).sum(0).astype(float)
den = 2 * tp + fp + fn
f1 = np.where(den > 0, 2 * tp / np.maximum(den, 1), 0.0)
print("\n" + json.dumps({"impl": "fastai", "labelAccuracy": float((pred == t).mean()),
                  "subsetAccuracy": float((pred == t).all(1).mean()),
                  "microF1": float(2 * tp.sum() / max(2 * tp.sum() + fp.sum() + fn.sum(), 1)),
                  "macroF1": float(f1.mean()), "labels": len(learn.dls.vocab[1]), "nValid": int(len(t))}))
shutil.rmtree(work, ignore_errors=True)
