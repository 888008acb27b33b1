"""quality_fastai: fastai's ULMFiT on the same data, vocabulary and recipe as kubefit-trainer, for
bench/quality.sh. Prints one JSON line with the keys of kubefit's metrics.json: single-label
accuracy, multi-label subsetAccuracy and labelAccuracy (accuracy_multi); microF1 and macroF1
(sklearn's f1_score); seconds (wall) and cpuSeconds (this process).
  quality_fastai.py --data BUCKET/LANG/data --vocab OUR_VOCAB.txt [--emb E --hidden H --layers NL
                    --epochs N --lm-epochs N --lr X --lm-lr X --bs B --bptt T --drop-mult X
                    --seed S --threads T]
Recipe (as kubefit's fit.c): with --lm-epochs > 0, LM fit_one_cycle(lm_epochs, lm_lr) unfrozen from
random weights on train+valid texts (10% held out); with 0 (bench/quality.sh's random-init row)
the classifier's encoder starts from random weights. Classifier: freeze_to(-1) 1 epoch at lr,
freeze_to(-2) 1 at lr/2, freeze_to(-3) 1 at lr/4, unfrozen N-3 at lr/20 (N < 4: first and last
phases), slices with factor 2.6 per group, moms (0.8, 0.7, 0.8). Multi-label when any training row
has other than one label (sigmoid + BCE, threshold 0.5), else single-label (softmax + CE), as the
trainer's --label-mode auto.
--threads T means T: the BLAS/OpenMP pools, PyTorch's intra- and inter-op threads and fastai's
tokenizer (n_workers 0: in this process) are all limited before anything runs. The vocabulary is
read exactly as the trainer reads it (hack/kubefit_torch.read_vocab).
"""
import argparse
import os
import sys

ap = argparse.ArgumentParser()
ap.add_argument("--data", required=True)
ap.add_argument("--vocab", required=True)
for k, d in (("emb", 400), ("hidden", 1152), ("layers", 3), ("epochs", 4), ("lm-epochs", 1), ("bs", 64),
             ("bptt", 72), ("seed", 42), ("threads", 1)):
    ap.add_argument("--" + k, type=int, default=d)
for k, d in (("lr", 2e-2), ("lm-lr", 1e-2), ("drop-mult", 0.5)):
    ap.add_argument("--" + k, type=float, default=d)
a = ap.parse_args()
if a.threads > 0:  # before numpy/torch load their thread pools
    for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[v] = str(a.threads)

import json  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from fastai.text.all import (AWD_LSTM, CategoryBlock, ColReader, ColSplitter, DataBlock, MultiCategoryBlock,  # noqa: E402
                             RandomSplitter, TextBlock, awd_lstm_clas_config, awd_lstm_lm_config, language_model_learner,
                             set_seed, text_classifier_learner)
from sklearn.metrics import f1_score  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "hack"))
from kubefit_torch import read_vocab  # noqa: E402

t_wall, t_cpu = time.time(), time.process_time()
if a.threads > 0:
    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
set_seed(a.seed)
vocab = read_vocab(a.vocab)
tr = pd.read_csv(os.path.join(a.data, "train.csv"), keep_default_na=False, dtype=str)
va = pd.read_csv(os.path.join(a.data, "valid.csv"), keep_default_na=False, dtype=str)
col = "labels" if "labels" in tr.columns else "label"
tr["is_valid"], va["is_valid"] = False, True
df = pd.concat([tr, va], ignore_index=True)
multi = any(len([l for l in s.split(";") if l]) != 1 for s in tr[col])
train_labels = sorted({l for s in tr[col] for l in s.split(";") if l})
keep = set(train_labels)
# Labels of valid.csv that training never saw are dropped, as kubefit does (ds_relabel); a
# single-label row left without one is dropped.
df["labs"] = [[l for l in s.split(";") if l in keep] for s in df[col]]
if not multi:
    df = df[[bool(l) for l in df["labs"]]].reset_index(drop=True)
    df["labs"] = [l[0] for l in df["labs"]]

work = tempfile.mkdtemp(prefix="kf-quality-")  # fastai saves the encoder under path/models
tok = dict(n_workers=0)  # tokenise in this process: no pool of --threads-ignoring workers
enc = None
if a.lm_epochs > 0:
    lm_cfg = dict(awd_lstm_lm_config, emb_sz=a.emb, n_hid=a.hidden, n_layers=a.layers)
    lm_block = DataBlock(blocks=TextBlock.from_df("text", vocab=vocab, is_lm=True, seq_len=a.bptt, **tok),
                         get_x=ColReader("text"), splitter=RandomSplitter(0.1, seed=a.seed))
    dls_lm = lm_block.dataloaders(df, bs=a.bs, seq_len=a.bptt, device="cpu", num_workers=0)
    lm = language_model_learner(dls_lm, AWD_LSTM, config=lm_cfg, pretrained=False, drop_mult=a.drop_mult, path=work)
    lm.fit_one_cycle(a.lm_epochs, a.lm_lr)
    lm.save_encoder("kf_enc")
    enc = "kf_enc"

clas_cfg = dict(awd_lstm_clas_config, emb_sz=a.emb, n_hid=a.hidden, n_layers=a.layers)
yblock = MultiCategoryBlock(vocab=train_labels) if multi else CategoryBlock(vocab=train_labels)
dblock = DataBlock(blocks=(TextBlock.from_df("text", vocab=vocab, seq_len=a.bptt, **tok), yblock),
                   get_x=ColReader("text"), get_y=ColReader("labs"), splitter=ColSplitter("is_valid"))
dls = dblock.dataloaders(df, bs=a.bs, seq_len=a.bptt, device="cpu", num_workers=0)
learn = text_classifier_learner(dls, AWD_LSTM, config=clas_cfg, pretrained=False, drop_mult=a.drop_mult,
                                seq_len=a.bptt, path=work)
if enc:
    learn.load_encoder(enc)
moms = (0.8, 0.7, 0.8)
plan = {1: [(-1, 1, 1.0)], 2: [(-1, 1, 1.0), (0, 1, 0.05)], 3: [(-1, 1, 1.0), (-2, 1, 0.5), (0, 1, 0.05)]}
phases = plan.get(a.epochs, [(-1, 1, 1.0), (-2, 1, 0.5), (-3, 1, 0.25), (0, a.epochs - 3, 0.05)])
for i, (fz, n, mult) in enumerate(phases):
    learn.freeze_to(fz)
    hi = a.lr * mult
    learn.fit_one_cycle(n, hi if i == 0 else slice(hi / 2.6 ** (a.layers + 1), hi), moms=moms)
probs, targs = learn.get_preds()
res = {"impl": "fastai", "labels": len(train_labels), "nValid": int(len(targs)), "multiLabel": multi}
if multi:
    pred = probs.numpy() > 0.5
    t = targs.numpy() > 0.5
    res.update(subsetAccuracy=float((pred == t).all(1).mean()), labelAccuracy=float((pred == t).mean()))
else:
    pred, t = probs.numpy().argmax(1), targs.numpy()
    res.update(accuracy=float((pred == t).mean()))
res.update(microF1=float(f1_score(t, pred, average="micro", zero_division=0)),
           macroF1=float(f1_score(t, pred, average="macro", zero_division=0)),
           seconds=time.time() - t_wall, cpuSeconds=time.process_time() - t_cpu)
print("\n" + json.dumps(res))
shutil.rmtree(work, ignore_errors=True)
