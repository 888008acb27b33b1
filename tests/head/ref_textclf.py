#!/usr/bin/env python3
"""Reference values for tests/head/test_textclf_reference.c: fastai's whole text classifier
(get_text_classifier(AWD_LSTM, ...): SentenceEncoder over the AWD-LSTM, then
PoolingLinearClassifier) in float64, on random weights and a pad-first batch built by fastai's
pad_chunk, and every dropout mask drawn here and handed to fastai's modules in call order (so the
C code applies the SAME masks). "small": tiny sizes, several BPTT chunks with a growing real
batch and a max_len that drops the first chunk; "wide": fastai's emb 400 / bptt 72 / head
[1200,50,L], a real batch that shrinks between chunks (fastai's input[:real_bs] quirk included).
Inputs are exact in float32; BatchNorm inputs are checked to be well-conditioned.

Training step: multi-label BCE + AR (alpha 2) + TAR (beta 1) as TextLearner's RNNRegularizer,
backward; then an eval forward (running statistics, no dropout) on the same batch.

File: records { u32 name_len, name, u32 dtype (0 f32, 1 i32, 2 u8), u32 ndim, u64 dims, data }.
Usage: ref_textclf.py small=OUT_SMALL wide=OUT_WIDE (one run, one fastai import)
"""
import struct
import sys

import torch
import torch.nn.functional as F
from fastai.text.data import TensorText, pad_chunk
from fastai.text.models import awdlstm
from fastai.text.models.awdlstm import AWD_LSTM, awd_lstm_clas_split
from fastai.text.models.core import get_text_classifier

torch.set_default_dtype(torch.float64)
PAD, ALPHA, BETA = 1, 2.0, 1.0
gen, records = None, []


def put(name, t, dtype=0):
    t = t.detach().contiguous()
    arr = {0: t.to(torch.float32), 1: t.to(torch.int32), 2: t.to(torch.uint8)}[dtype]
    records.append((name, dtype, arr))


def write(path):
    with open(path, "wb") as f:
        for name, dt, t in records:
            nb = name.encode()
            f.write(struct.pack("<I", len(nb)) + nb + struct.pack("<II", dt, t.dim()))
            for d in t.shape:
                f.write(struct.pack("<Q", d))
            f.write(t.numpy().tobytes())


def f32(t):
    """Rounds to float32 and back: every input is exact in float32, so C and the reference see
    the same numbers (BatchNorm over 3 rows would turn input rounding into visible differences)."""
    return t.float().double()


def well_conditioned(mod, args):
    """Forward pre-hook on every BatchNorm: in training, a feature whose batch variance is small
    but not zero (near eps) amplifies float32 rounding by up to 1/sqrt(eps); the reference data
    must stay clear of that (a dead ReLU feature, variance exactly 0, gets no gradient)."""
    if mod.training:
        v = args[0].var(0, unbiased=False)
        v = v[v > 0].min().item()
        assert v > 5 * 1e-5, f"ill-conditioned BatchNorm({mod.num_features}) input (min batch variance {v:.3g})"


def mask(shape, p):
    return f32((torch.rand(shape, generator=gen) >= p).double() / (1 - p))


class MaskFeed:
    """Stands in for awdlstm's dropout_mask and F.dropout: hands out queued masks in order."""

    def __init__(self):
        self.queue = []

    def dropout_mask(self, x, sz, p):
        m = self.queue.pop(0)
        assert tuple(m.shape) == tuple(sz), (m.shape, sz)
        return m

    def dropout(self, w, p=0.5, training=True, inplace=False):
        m = self.queue.pop(0)
        assert m.shape == w.shape
        return w * m


class FShim:
    def __init__(self, feed):
        self.feed = feed

    def __getattr__(self, name):
        return self.feed.dropout if name == "dropout" else getattr(F, name)


class MaskMul(torch.nn.Module):
    """Replaces the head's nn.Dropout with a fixed mask (training only, as nn.Dropout)."""

    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, x):
        return x * self.m if self.training else x


def build(kind, out_path):
    """Writes the reference file of one configuration (see the module docstring)."""
    global gen, records
    if kind == "small":  # several chunks, growing real_bs, first chunk dropped by max_len
        V, E, H, NL, B, S, BPTT, MAXLEN, L = 40, 8, 10, 3, 4, 11, 4, 8, 3
        P = dict(embed_p=0.1, input_p=0.3, hidden_p=0.2, weight_p=0.3, output_p=0.25)
        LIN_FTRS, HEAD_P1, LENS = [6], 0.15, [11, 9, 5, 2]
    else:  # "wide": fastai's emb 400, bptt 72, max_len, head [1200, 50, L] and classifier dropouts;
        # a narrow hidden size keeps the test fast (the LSTM at full size is nn's to test)
        V, E, H, NL, B, S, BPTT, MAXLEN, L = 60, 400, 48, 3, 8, 80, 72, 72 * 20, 5
        P = dict(embed_p=0.05, input_p=0.4, hidden_p=0.3, weight_p=0.5, output_p=0.4)
        LIN_FTRS, HEAD_P1, LENS = [50], 0.1, [80, 78, 75, 60, 40, 25, 10, 3]
    gen = torch.Generator().manual_seed(4321)
    records = []
    feed = MaskFeed()
    awdlstm.dropout_mask = feed.dropout_mask
    awdlstm.F = FShim(feed)

    cfg = dict(emb_sz=E, n_hid=H, n_layers=NL, pad_token=PAD, **P)
    model = get_text_classifier(AWD_LSTM, V, L, seq_len=BPTT, config=cfg, lin_ftrs=LIN_FTRS,
                                ps=[HEAD_P1], pad_idx=PAD, max_len=MAXLEN).double()
    for mod in model.modules():
        if isinstance(mod, torch.nn.BatchNorm1d):
            mod.register_forward_pre_hook(well_conditioned)
    with torch.no_grad():
        for name, prm in model.named_parameters():
            # recurrent weights as PyTorch initialises them (U(+-1/sqrt(H_l)): a contracting
            # recurrence; larger ones make it chaotic and float32 rounding grows along time);
            # input weights wider, for outputs that vary from row to row (well-conditioned BN)
            bound = 0.6
            if "weight_hh" in name:
                bound = 1.0 / prm.shape[1] ** 0.5
            elif "weight_ih" in name:
                bound = 3.0 / prm.shape[1] ** 0.5
            prm.copy_(f32(torch.empty_like(prm).uniform_(-bound, bound, generator=gen)))
        for name, buf in model.named_buffers():
            if name.endswith("running_mean"):
                buf.copy_(f32(torch.empty_like(buf).uniform_(-0.3, 0.3, generator=gen)))
            elif name.endswith("running_var"):
                buf.copy_(f32(torch.empty_like(buf).uniform_(0.5, 1.5, generator=gen)))
    put("config", torch.tensor([V, E, H, NL, B, S, BPTT, MAXLEN, L, LIN_FTRS[0]]), 1)
    put("p", torch.tensor([P["embed_p"], P["input_p"], P["hidden_p"], P["weight_p"], P["output_p"],
                           HEAD_P1]))
    for name, t in model.state_dict().items():
        if not name.endswith("num_batches_tracked"):
            put("w." + name, t)
    put("names", torch.tensor(list("\n".join(model.state_dict().keys()).encode()), dtype=torch.uint8), 2)
    group_of = {id(p): g for g, ps in enumerate(awd_lstm_clas_split(model)) for p in ps}
    for name, prm in model.named_parameters():
        put("group." + name, torch.tensor([group_of[id(prm)]]), 1)

    # Pad-first batch as fastai's pad_input_chunk builds it, longest row first; some tokens of the
    # texts are pad_idx-free random ids >= 2.
    lens = LENS
    texts = [torch.randint(2, V, (n,), generator=gen) for n in lens]
    toks = torch.stack([pad_chunk(TensorText(t), pad_idx=PAD, pad_first=True, seq_len=BPTT,
                                  pad_len=S) for t in texts]).as_subclass(torch.Tensor)
    put("tokens", toks, 1)
    y = (torch.rand(B, L, generator=gen) < 0.5).double()
    put("y", y)

    # Masks per chunk in fastai's call order: embedding, input, then per layer weight (+ hidden).
    head_ps = [P["output_p"], HEAD_P1]
    head_masks = [mask((B, d), p) for d, p in zip([3 * E] + LIN_FTRS, head_ps)]
    for k, m in enumerate(head_masks):
        put(f"head_mask.{k}", m)
        model[1].layers[k][1] = MaskMul(m)
    queue = []
    for c, i in enumerate(range(0, S, BPTT)):
        rb = int((toks[:, i] != PAD).sum())
        ms = {"emb": mask((V, 1), P["embed_p"]), "in": mask((rb, 1, E), P["input_p"])}
        order = ["emb", "in"]
        for l in range(NL):
            hl = H if l < NL - 1 else E
            ms[f"w{l}"] = mask((4 * hl, hl), P["weight_p"])
            order.append(f"w{l}")
            if l < NL - 1:
                ms[f"h{l}"] = mask((rb, 1, hl), P["hidden_p"])
                order.append(f"h{l}")
        for n, m in ms.items():
            put(f"c{c}.mask.{n}", m)
        queue += [ms[n] for n in order]
    feed.queue = queue

    model.train()
    model.reset()
    logits, raw, out = model(toks)
    assert not feed.queue, "every mask used"
    out.retain_grad()
    loss = F.binary_cross_entropy_with_logits(logits, y)
    ar = ALPHA * out.pow(2).mean()
    tar = BETA * (raw[:, 1:] - raw[:, :-1]).pow(2).mean()
    (loss + ar + tar).backward()
    put("t.logits", logits)
    put("t.enc", out.transpose(0, 1))             # (T,B,E) time-major
    put("t.loss", torch.stack([loss, ar + tar]))
    put("t.d_enc", out.grad.transpose(0, 1))      # dL/d(encoder output), task + AR + TAR
    for name, prm in model.named_parameters():
        put("t.grad." + name, prm.grad)
    for name, buf in model.named_buffers():
        if "running" in name:
            put("t.buf." + name, buf)

    model.eval()
    model.reset()
    with torch.no_grad():
        logits_e, _, _ = model(toks)
    put("e.logits", logits_e)
    write(out_path)


for arg in sys.argv[1:]:
    kind, path = arg.split("=", 1)
    build(kind, path)
