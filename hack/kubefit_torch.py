"""kubefit_torch: load a kubefit model (safetensors written by kubefit-trainer or hack/fastai-convert)
into a PyTorch/fastai AWD-LSTM model.

    from kubefit_torch import load
    model, vocab, meta = load("model.safetensors", "vocab.txt")    # classifier or language model
    model.eval(); model.reset()
    logits = model(torch.tensor([[vocab.index("xxbos"), ...]]))[0]

A classifier comes back as fastai's get_text_classifier(AWD_LSTM, ...) (SentenceEncoder +
PoolingLinearClassifier), a language model as get_language_model(AWD_LSTM, ...). The sizes,
dropout multiplier and labels come from the file's metadata (kubefit.config, kubefit.labels), or
from the tensor shapes when there is no metadata. Tied and aliased tensors (encoder_dp.emb.weight,
1.decoder.weight) are filled from the one stored copy.
Needs the venv-torch environment (PyTorch, fastai, safetensors).
"""
import json
import sys

import torch
from safetensors import safe_open


def _meta_and_tensors(path):
    with safe_open(path, "pt") as f:
        meta = f.metadata() or {}
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    return meta, tensors


def read_vocab(path):
    """vocab.txt exactly as the trainer reads it (trainer/text/vocab.c): a UTF-8 byte-order mark
    skipped, lines split on LF only, one CR before it dropped, the line "\\n" is the newline token.
    (Python's text mode would also split on a lone CR inside a token.)"""
    with open(path, encoding="utf-8-sig", newline="") as f:
        lines = f.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return ["\n" if l in ("\\n", "\\n\r") else l[:-1] if l.endswith("\r") else l for l in lines]


def load(model_path, vocab_path=None):
    """Returns (model, vocab list or None, metadata dict)."""
    from fastai.text.models.awdlstm import AWD_LSTM, awd_lstm_clas_config, awd_lstm_lm_config
    from fastai.text.models.core import get_language_model, get_text_classifier

    meta, t = _meta_and_tensors(model_path)
    cfg = json.loads(meta.get("kubefit.config", "{}"))
    classifier = "0.module.encoder.weight" in t
    pre = "0.module." if classifier else "0."
    V, E = t[pre + "encoder.weight"].shape
    NL = 0
    while f"{pre}rnns.{NL}.module.weight_ih_l0" in t:
        NL += 1
    H = t[f"{pre}rnns.0.module.weight_ih_l0"].shape[0] // 4 if NL > 1 else E
    dm = float(cfg.get("dropMult", 0.5))
    vocab = read_vocab(vocab_path) if vocab_path else None
    if vocab is not None and len(vocab) != V:
        raise ValueError(f"{vocab_path}: {len(vocab)} tokens, the model has {V} embedding rows")
    if classifier:
        labels = json.loads(meta.get("kubefit.labels", "[]"))
        n_out = t[max(k for k in t if k.startswith("1.layers.") and k.endswith(".weight")
                      and t[k].dim() == 2)].shape[0]
        c = dict(awd_lstm_clas_config, emb_sz=E, n_hid=H, n_layers=NL)
        model = get_text_classifier(AWD_LSTM, V, n_out, config=c, drop_mult=dm, seq_len=int(cfg.get("bptt", 72)))
        meta["labels"] = labels
    else:
        c = dict(awd_lstm_lm_config, emb_sz=E, n_hid=H, n_layers=NL)
        model = get_language_model(AWD_LSTM, V, config=c, drop_mult=dm)
    sd = model.state_dict()
    new = {}
    for k, v in sd.items():
        src = k
        if k.endswith("encoder_dp.emb.weight") or k == "1.decoder.weight":
            src = pre + "encoder.weight"
        if k.endswith("num_batches_tracked"):
            new[k] = v  # not used in eval; PyTorch's int64 counter
            continue
        if src not in t:
            raise KeyError(f"{model_path}: tensor {src} missing")
        if tuple(t[src].shape) != tuple(v.shape):
            raise ValueError(f"{model_path}: {src} has shape {tuple(t[src].shape)}, the model wants {tuple(v.shape)}")
        new[k] = t[src].to(v.dtype)
    model.load_state_dict(new, strict=True)
    return model, vocab, meta


if __name__ == "__main__":
    m, v, meta = load(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
    print(type(m).__name__, sum(p.numel() for p in m.parameters()), "parameters;", meta.get("labels", ""))
