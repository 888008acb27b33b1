"""test_torch_interop: hack/fastai-convert and hack/kubefit_torch.py against fastai itself.

1. A randomly initialised fastai AWD-LSTM language model (small config), saved as Learner.save
   does ({"model": state_dict}) with a pickled vocab, goes through hack/fastai-convert; the file
   loads back through kubefit_torch into a fastai model whose eval outputs equal the original's.
2. kubefit-trainer takes that converted LM as its pretrained model (BUCKET/en/pretrained/): the
   fine-tuned LM it writes after 0 LM epochs holds the fastai rows for every shared token
   (match_embeds) and fastai's LSTM weights.
3. The classifier kubefit-trainer trained, loaded by kubefit_torch into fastai's
   get_text_classifier, gives the same probabilities as `kubefit-trainer predict` (eval mode;
   tolerance 2e-4: predict prints 4 decimals).
"""
import csv
import json
import os
import pickle
import random
import subprocess
import sys
import tempfile

import torch
from fastai.text.all import AWD_LSTM, awd_lstm_lm_config, get_language_model

SRC = os.environ.get("KUBEFIT_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BIN = os.environ.get("KUBEFIT_BINARY_DIR", os.path.join(SRC, "build"))
TRAINER = os.path.join(BIN, "trainer", "kubefit-trainer")
sys.path.insert(0, os.path.join(SRC, "hack"))
import kubefit_torch  # noqa: E402

fails = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        fails.append(what)


tmp = tempfile.mkdtemp(prefix="kf-interop-")
torch.manual_seed(0)
random.seed(0)
words = ["apple", "red", "cat", "pear", "blue", "dog"] + [f"w{i}" for i in range(40)]
specials = ["xxunk", "xxpad", "xxbos", "xxeos", "xxfld", "xxrep", "xxwrep", "xxup", "xxmaj"]
vocab = specials + words + ["only_in_fastai"]
vocab += [f"xxfake{i}" for i in range((-len(vocab)) % 8)]
V = len(vocab)
cfg = dict(awd_lstm_lm_config, emb_sz=16, n_hid=24, n_layers=2)
lm = get_language_model(AWD_LSTM, V, config=cfg).eval()
with torch.no_grad():
    lm[1].decoder.bias.uniform_(-0.5, 0.5)
torch.save({"model": lm.state_dict()}, os.path.join(tmp, "lm.pth"))
pickle.dump(vocab, open(os.path.join(tmp, "vocab.pkl"), "wb"))

# 1. convert and load back
conv = subprocess.run([os.path.join(SRC, "hack", "fastai-convert"), os.path.join(tmp, "lm.pth"),
                       os.path.join(tmp, "vocab.pkl"), os.path.join(tmp, "conv")], capture_output=True, text=True)
check(conv.returncode == 0, f"fastai-convert runs ({conv.stdout.strip()} {conv.stderr.strip()[-300:]})")
m2, v2, meta = kubefit_torch.load(os.path.join(tmp, "conv", "lm.safetensors"), os.path.join(tmp, "conv", "vocab.txt"))
check(v2 == vocab, "vocab.txt round trip")
m2.eval()
x = torch.randint(0, V, (3, 11))
lm.reset(); m2.reset()
with torch.no_grad():
    a, b = lm(x)[0], m2(x)[0]
check(torch.equal(a, b), "converted LM gives fastai's outputs exactly")

# 2. + 3. the trainer with this LM as its pretrained model
bucket = os.path.join(tmp, "b")
os.makedirs(os.path.join(bucket, "en", "data"))
os.makedirs(os.path.join(bucket, "en", "pretrained"))
for f in ("lm.safetensors", "vocab.txt"):
    os.rename(os.path.join(tmp, "conv", f), os.path.join(bucket, "en", "pretrained", f))
keys = {"fruit": ["apple", "pear"], "color": ["red", "blue"], "animal": ["cat", "dog"]}
for name, n in (("train", 200), ("valid", 60)):
    with open(os.path.join(bucket, "en", "data", name + ".csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "labels"])
        for _ in range(n):
            t = [random.choice(words[6:]) for _ in range(random.randint(5, 20))]
            ls = [k for k in keys if random.random() < 0.5] or ["fruit"]
            for k in ls:
                t.insert(random.randrange(len(t)), random.choice(keys[k]))
            w.writerow([" ".join(t), ";".join(ls)])
common = ["--lang", "en", "--bucket-name", bucket, "--model-dir", "m", "--bptt", "8"]
tr = subprocess.run([TRAINER, "train", *common, "--epochs", "2", "--lm-epochs", "0", "--batch-size", "16",
                     "--min-freq", "1", "--threads", "2", "--lr", "0.05"], capture_output=True, text=True)
check(tr.returncode == 0, f"trainer with the converted LM exits 0 ({tr.stderr.strip()[-300:]})")
check("pretrained language model loaded" in tr.stderr, "trainer used the pretrained LM")
out = os.path.join(bucket, "m", "en", "default", "1")
if tr.returncode == 0:
    ft, fv, _ = kubefit_torch.load(os.path.join(out, "lm.safetensors"), os.path.join(out, "vocab.txt"))
    src_emb = lm[0].encoder.weight.detach()
    ft_emb = ft[0].encoder.weight.detach()
    shared = [t for t in fv if t in vocab and not t.startswith("xxfake")]
    check(len(shared) > 20, f"{len(shared)} tokens shared with the pretrained vocab")
    check(all(torch.equal(ft_emb[fv.index(t)], src_emb[vocab.index(t)]) for t in shared),
          "match_embeds: shared tokens keep fastai's rows")
    new = [i for i, t in enumerate(fv) if t not in vocab]
    mean = src_emb.mean(0)
    check(all(torch.allclose(ft_emb[i], mean, atol=1e-6) for i in new), f"{len(new)} new tokens get the mean row")
    check(torch.equal(ft[0].rnns[1].module.weight_ih_l0, lm[0].rnns[1].module.weight_ih_l0),
          "LSTM weights come from fastai's model")

    clf, cv, cmeta = kubefit_torch.load(os.path.join(out, "model.safetensors"), os.path.join(out, "vocab.txt"))
    clf.eval()
    labels = cmeta["labels"]
    texts = ["apple w1 w2 red", "w3 cat w4 w5 w6 w7 w8 w9 w10 w11 w12 dog w13 w14 w15", "blue", "w20 w21 pear"]
    pr = subprocess.run([TRAINER, "predict", *common], input="\n".join(texts) + "\n", capture_output=True, text=True)
    check(pr.returncode == 0, f"predict exits 0 ({pr.stderr.strip()[-300:]})")
    ours = [json.loads(l) for l in pr.stdout.splitlines()]
    worst = 0.0
    for text, o in zip(texts, ours):
        ids = torch.tensor([[cv.index("xxbos")] + [cv.index(w) if w in cv else 0 for w in text.split()]])
        clf.reset()
        with torch.no_grad():
            p = torch.sigmoid(clf(ids)[0][0])
        for i, l in enumerate(labels):
            worst = max(worst, abs(float(p[i]) - o["probabilities"][l]))
    check(len(ours) == len(texts) and worst <= 2e-4,
          f"fastai's classifier with our weights = our predict (max |diff| {worst:.2e})")
subprocess.run(["rm", "-rf", tmp])
print(f"{len(fails)} failures")
sys.exit(1 if fails else 0)
