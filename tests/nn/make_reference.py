#!/usr/bin/env python3
"""Reference values for tests/nn/test_nn_reference.c, from fastai's own AWD-LSTM language model
(get_language_model(AWD_LSTM, ...)) run in float64 on random weights and tokens, with dropout
masks drawn here and fed to fastai's modules (its mask functions are patched to hand them out in
call order), so the C code can apply the SAME masks.

Writes one file of records: u32 name length, name, u32 dtype (0 f64, 1 i64), u32 ndim,
u64 dims..., data (little endian). Usage: make_reference.py OUT [SEED]
"""
import struct
import sys

import torch
import torch.nn.functional as F
from fastai.text.models import awdlstm
from fastai.text.models.awdlstm import AWD_LSTM, awd_lstm_lm_config
from fastai.text.models.core import get_language_model

V, E, H, NL, B, T, PAD = 64, 16, 24, 3, 3, 7, 1
P = dict(embed_p=0.1, input_p=0.3, hidden_p=0.2, weight_p=0.3, output_p=0.25)
ALPHA, BETA = 2.0, 1.0

records = []


def put(name, t):
    t = t.detach().cpu().contiguous()
    if t.dtype in (torch.int64, torch.int32):
        records.append((name, 1, t.to(torch.int64)))
    else:
        records.append((name, 0, t.to(torch.float64)))


def write(path):
    with open(path, "wb") as f:
        for name, dt, t in records:
            nb = name.encode()
            f.write(struct.pack("<I", len(nb)) + nb + struct.pack("<II", dt, t.dim()))
            for d in t.shape:
                f.write(struct.pack("<Q", d))
            f.write(t.numpy().tobytes())


def mask(shape, p, gen):
    """0 or 1/(1-p), as fastai's dropout_mask; never all-keep for the sizes used here."""
    keep = (torch.rand(shape, generator=gen, dtype=torch.float64) >= p).to(torch.float64)
    return keep / (1 - p)


class MaskFeed:
    """Stands in for fastai's dropout_mask and F.dropout: returns the queued masks in order."""

    def __init__(self):
        self.queue = []

    def dropout_mask(self, x, sz, p):
        m = self.queue.pop(0)
        assert tuple(m.shape) == tuple(sz), (m.shape, sz)
        return m.to(x.dtype)

    def dropout(self, w, p=0.5, training=True, inplace=False):
        m = self.queue.pop(0)
        assert m.shape == w.shape
        return w * m


class FShim:
    """awdlstm's `F` with dropout routed to MaskFeed (WeightDropout calls F.dropout)."""

    def __init__(self, feed):
        self.feed = feed

    def __getattr__(self, name):
        return self.feed.dropout if name == "dropout" else getattr(F, name)


def main():
    out = sys.argv[1]
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 1234
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed + 1)
    feed = MaskFeed()
    awdlstm.dropout_mask = feed.dropout_mask
    awdlstm.F = FShim(feed)

    cfg = dict(awd_lstm_lm_config, emb_sz=E, n_hid=H, n_layers=NL, pad_token=PAD, **P)
    model = get_language_model(AWD_LSTM, V, config=cfg).double()
    enc = model[0]
    # Random non-zero weights everywhere (the decoder bias starts at zero in fastai).
    with torch.no_grad():
        for name, prm in model.named_parameters():
            prm.copy_(torch.empty_like(prm).uniform_(-0.5, 0.5))
    assert model[1].decoder.weight is enc.encoder.weight  # tied

    put("config", torch.tensor([V, E, H, NL, B, T, PAD]))
    put("p", torch.tensor([P["embed_p"], P["input_p"], P["hidden_p"], P["weight_p"],
                           P["output_p"], ALPHA, BETA], dtype=torch.float64))
    for name, t in model.state_dict().items():
        put("w." + name, t)

    raw_outs = {}
    hooks = [rnn.register_forward_hook(
        lambda mod, inp, outp, l=l: raw_outs.__setitem__(l, outp[0])) for l, rnn in
        enumerate(enc.rnns)]

    enc.reset()
    # chunk 0, 1: training with masks, carried state; chunk 2: eval, smaller batch (keeps the
    # first rows); chunk 3: training, batch grows back (zero rows appended).
    plan = [(0, True, B), (1, True, B), (2, False, B - 1), (3, True, B)]
    put("nchunks", torch.tensor([len(plan)]))
    for k, training, b in plan:
        model.train(training)
        x = torch.randint(0, V, (b, T), generator=gen)
        x[0, 2] = PAD  # padding_idx rows get no gradient from lookups
        y = torch.randint(0, V, (b, T), generator=gen)
        put(f"c{k}.train", torch.tensor([int(training), b]))
        put(f"c{k}.x", x)
        put(f"c{k}.y", y)
        if training:
            masks = {"emb": mask((V, 1), P["embed_p"], gen), "in": mask((b, 1, E), P["input_p"], gen)}
            for l in range(NL):
                hl = H if l < NL - 1 else E
                masks[f"w{l}"] = mask((4 * hl, hl), P["weight_p"], gen)
                if l < NL - 1:
                    masks[f"h{l}"] = mask((b, 1, hl), P["hidden_p"], gen)
            masks["out"] = mask((b, 1, E), P["output_p"], gen)
            # Call order in fastai's forward: embedding, input, then per layer weight + hidden.
            order = ["emb", "in"]
            for l in range(NL):
                order += [f"w{l}"] + ([f"h{l}"] if l < NL - 1 else [])
            order.append("out")
            feed.queue = [masks[n] for n in order]
            for n, m in masks.items():
                put(f"c{k}.mask.{n}", m)
        model.zero_grad()
        logits, raw, dropped = model(x)
        assert not feed.queue
        ce = F.cross_entropy(logits.reshape(-1, V), y.reshape(-1))
        ar = ALPHA * dropped.pow(2).mean() if training else torch.zeros((), dtype=torch.float64)
        tar = (BETA * (raw[:, 1:] - raw[:, :-1]).pow(2).mean()
               if training and len(raw) > 1 else torch.zeros((), dtype=torch.float64))
        total = ce + ar + tar
        total.backward()
        put(f"c{k}.loss", torch.stack([ce, ar, tar, total]))
        put(f"c{k}.probs", torch.softmax(logits, -1))
        for l in range(NL):
            put(f"c{k}.raw{l}", raw_outs[l])
        for name, prm in model.named_parameters():
            put(f"c{k}.grad.{name}", prm.grad)
    # Encoder alone (what the classifier runs): AWD_LSTM output, upstream gradient G given, so
    # the loss is sum(raw * G); state carried on from chunk 3.
    model.train(True)
    x = torch.randint(0, V, (B, T), generator=gen)
    x[1, 0] = PAD
    put("e0.x", x)
    masks = {"emb": mask((V, 1), P["embed_p"], gen), "in": mask((B, 1, E), P["input_p"], gen)}
    order = ["emb", "in"]
    for l in range(NL):
        hl = H if l < NL - 1 else E
        masks[f"w{l}"] = mask((4 * hl, hl), P["weight_p"], gen)
        order.append(f"w{l}")
        if l < NL - 1:
            masks[f"h{l}"] = mask((B, 1, hl), P["hidden_p"], gen)
            order.append(f"h{l}")
    feed.queue = [masks[n] for n in order]
    for n, m in masks.items():
        put(f"e0.mask.{n}", m)
    model.zero_grad()
    enc_out = enc(x)
    assert not feed.queue
    g = torch.empty_like(enc_out).uniform_(-1, 1)
    (enc_out * g).sum().backward()
    put("e0.dout", g)
    for l in range(NL):
        put(f"e0.raw{l}", raw_outs[l])
    for name, prm in enc.named_parameters():
        put(f"e0.grad.0.{name}", prm.grad)
    for h in hooks:
        h.remove()
    write(out)


if __name__ == "__main__":
    main()
