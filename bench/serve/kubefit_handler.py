"""TorchServe handler for bench/serve.sh: a kubefit model (model.safetensors + vocab.txt) loaded in
PyTorch/fastai through hack/kubefit_torch.py, texts tokenised with fastai's own pipeline (spaCy's
rule-based tokenizer + fastai's rules, as a fastai text model is served), a batch padded as fastai
pads one (pad-first by whole BPTT chunks, longest first) and run in eval mode. Answers each request
as kubefit-serve's /predictions route does: {"labels": [...], "probabilities": {label: p}}.

Packaged by bench/serve.sh with torch-model-archiver (--handler this file, --extra-files
kubefit_torch.py,vocab.txt). KUBEFIT_TS_THREADS: torch threads per worker (default 1).
"""
import json
import os
import sys

import torch


class KubefitHandler:
    def __init__(self):
        self.initialized = False

    def initialize(self, context):
        model_dir = context.system_properties.get("model_dir")
        sys.path.insert(0, model_dir)
        import kubefit_torch
        from fastai.text.core import TokenizeWithRules, WordTokenizer

        torch.set_num_threads(int(os.environ.get("KUBEFIT_TS_THREADS", "1")))
        self.model, vocab, meta = kubefit_torch.load(os.path.join(model_dir, "model.safetensors"),
                                                     os.path.join(model_dir, "vocab.txt"))
        self.model.eval()
        self.labels = meta["labels"]
        self.multi = meta.get("kubefit.multi_label") == "1"
        self.threshold = float(meta.get("kubefit.threshold", "0.5"))
        self.bptt = int(json.loads(meta.get("kubefit.config", "{}")).get("bptt", 72))
        self.index = {t: i for i, t in enumerate(vocab)}
        self.tok = TokenizeWithRules(WordTokenizer(lang=json.loads(meta.get("kubefit.config", "{}")).get("lang", "en")))
        self.initialized = True

    def _ids(self, text):
        toks = next(iter(self.tok([text])))
        return [self.index.get(t, 0) for t in toks]

    def _batch(self, seqs):
        """fastai's pad_input_chunk (pad-first by whole chunks of bptt, pad 1), longest row first,
        the length rounded up to a whole chunk (as kubefit-serve batches)."""
        order = sorted(range(len(seqs)), key=lambda i: -len(seqs[i]))
        S = max(len(s) for s in seqs)
        S += (-S) % self.bptt
        rows = []
        for i in order:
            s = seqs[i]
            l = S - len(s)
            before = l // self.bptt * self.bptt
            rows.append([1] * before + s + [1] * (l - before))
        return torch.tensor(rows), order

    def handle(self, data, context):
        texts = []
        for row in data:
            body = row.get("data") if isinstance(row, dict) else row
            if body is None and isinstance(row, dict):
                body = row.get("body")
            if isinstance(body, (bytes, bytearray)):
                body = body.decode("utf-8", errors="replace")
            if isinstance(body, dict):
                body = body.get("data") or body.get("text") or ""
            texts.append(str(body))
        x, order = self._batch([self._ids(t) for t in texts])
        with torch.inference_mode():
            logits = self.model(x)[0]
            probs = torch.sigmoid(logits) if self.multi else torch.softmax(logits, dim=-1)
        out = [None] * len(texts)
        for row, i in enumerate(order):
            p = probs[row].tolist()
            if self.multi:
                labels = [l for l, v in zip(self.labels, p) if v > self.threshold]
            else:
                labels = [self.labels[max(range(len(p)), key=lambda k: (p[k], -k))]]
            out[i] = {"labels": labels, "probabilities": {l: round(v, 4) for l, v in zip(self.labels, p)}}
        return out


_service = KubefitHandler()


def handle(data, context):
    if not _service.initialized:
        _service.initialize(context)
    if data is None:
        return None
    return _service.handle(data, context)
