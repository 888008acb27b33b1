#!/usr/bin/env python3
"""Reference values for tests/head/test_head_reference.c: fastai's own PoolingLinearClassifier
(masked_concat_pool + LinBnDrop blocks) in float64 on random encoder outputs with a fastai
pad_chunk pad pattern, random weights/BN statistics and dropout masks drawn here (applied in
place of nn.Dropout so the C code can use the SAME masks).

Cases (prefix): "m." multi-label BCE in training mode, "s." single-label CE in training mode,
"e." single-label CE in eval mode, "r." AR/TAR on the encoder output, for three head shapes:
"a": fastai's default dims [3E,50,L] ps [0.4,0.1] on a tiny E; "b": 3 blocks, the middle one with
p = 0 so its Linear is at index 1; "c": fastai's sizes (E 400, bptt 72, [1200,50,L]).
Inputs are exact in float32 and every training BatchNorm input is checked to be well-conditioned
(no feature with a tiny non-zero batch variance), so differences measure the C arithmetic.

File: records { u32 name_len, name, u32 dtype (0 f32, 1 i32, 2 u8), u32 ndim, u64 dims, data }.
Usage: ref_head.py a=OUT_A b=OUT_B c=OUT_C (any subset; one run, one fastai import)
"""
import struct
import sys

import torch
import torch.nn.functional as F
from fastai.text.data import TensorText, pad_chunk
from fastai.text.models.core import PoolingLinearClassifier, masked_concat_pool

torch.set_default_dtype(torch.float64)


def well_conditioned(x, training):
    """Training BatchNorm on a feature whose batch variance is small but not zero (near eps)
    amplifies float32 rounding by up to 1/sqrt(eps): the reference data must stay clear of that
    (a dead ReLU feature, variance exactly 0, gets no gradient and is fine)."""
    if training:
        v = x.var(0, unbiased=False)
        v = v[v > 0].min().item()
        assert v > 5 * 1e-5, f"ill-conditioned BatchNorm input (min batch variance {v:.3g})"


def f32(t):
    """Rounds to float32 and back: every input is exact in float32 (ill-conditioned spots such as
    BatchNorm over 3 rows would otherwise turn input rounding into visible differences)."""
    return t.float().double()


def build(shape, out_path):
    """Writes the reference file of one head shape (see the module docstring)."""
    global gen, records
    gen = torch.Generator().manual_seed({"a": 1234, "b": 987}.get(shape, 555))

    if shape == "a":
        B, E, BPTT, T, L = 8, 6, 4, 11, 4
        dims, ps = [3 * E, 50, L], [0.4, 0.1]
    elif shape == "b":
        B, E, BPTT, T, L = 6, 5, 3, 8, 3
        dims, ps = [3 * E, 9, 7, L], [0.3, 0.0, 0.2]
    else:  # "c": fastai's sizes (emb 400, bptt 72, [1200, 50, L])
        B, E, BPTT, T, L = 8, 400, 72, 80, 5
        dims, ps = [3 * E, 50, L], [0.4, 0.1]
    PAD = 1
    records = []

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

    def rnd(*shape, lo=-1.0, hi=1.0):
        """Uniform values that float32 holds exactly, so C and the reference see the same inputs."""
        return f32(torch.rand(*shape, generator=gen) * (hi - lo) + lo)

    def nonzero(*shape):
        """Random values bounded away from zero (magnitude 0.2..1.2, random sign)."""
        mag = rnd(*shape, lo=0.2, hi=1.2)
        sign = torch.where(torch.rand(*shape, generator=gen) < 0.5, -1.0, 1.0)
        return mag * sign

    # Pad pattern exactly as fastai's pad_input_chunk(pad_first=True, seq_len=BPTT) builds it for a
    # batch sorted by length (longest first); the longest row has length T.
    lens = sorted([T] + [int(x) for x in torch.randint(1, T + 1, (B - 1,), generator=gen)],
                  reverse=True)
    toks = torch.stack([pad_chunk(TensorText(torch.full((n,), 7)), pad_idx=PAD, pad_first=True,
                                  seq_len=BPTT, pad_len=T) for n in lens])
    pad = toks == PAD                                   # (B,T)
    enc_bt = nonzero(B, T, E)                           # batch-first for fastai
    # rows of different magnitude (as documents are): keeps every BatchNorm feature's batch
    # variance well above eps, where float32 rounding is not amplified (checked below)
    enc_bt = f32(enc_bt * rnd(B, 1, 1, lo=0.5, hi=2.0))
    enc_tb = enc_bt.transpose(0, 1).contiguous()        # (T,B,E) time-major for C

    head = PoolingLinearClassifier(dims, ps, bptt=BPTT).double()
    sd = head.state_dict()
    names = []
    for k, blk in enumerate(head.layers):
        bn, lin = blk[0], [m for m in blk if isinstance(m, torch.nn.Linear)][0]
        with torch.no_grad():
            bn.weight.copy_(nonzero(bn.num_features))
            bn.bias.copy_(nonzero(bn.num_features))
            bn.running_mean.copy_(rnd(bn.num_features))
            bn.running_var.copy_(rnd(bn.num_features, lo=0.5, hi=1.5))
            lin.weight.copy_(f32(nonzero(*lin.weight.shape) / lin.weight.shape[1] ** 0.5))
    # state_dict names as the whole classifier (SequentialRNN index 1) has them, order preserved.
    for key in head.state_dict():
        names.append("1." + key)
    put("names", torch.tensor(list("\n".join(names).encode()), dtype=torch.uint8), 2)
    init_state = {k: v.clone() for k, v in head.state_dict().items()}

    put("pad", pad, 2)
    put("enc", enc_tb)
    put("lens", torch.tensor(lens), 1)
    for key, v in init_state.items():
        if not key.endswith("num_batches_tracked"):
            put("w." + "1." + key, v)

    masks = [f32((torch.rand(B, d, generator=gen) >= p).double() / (1 - p)) for d, p in zip(dims, ps)]
    for k, m in enumerate(masks):
        put(f"mask.{k}", m)
    y_multi = (torch.rand(B, L, generator=gen) < 0.4).double()
    y_multi[0] = torch.tensor([1.0] + [0.0] * (L - 1))  # both classes present
    y_single = torch.randint(0, L, (B,), generator=gen)
    put("y_multi", y_multi)
    put("y_single", y_single, 1)

    def run(prefix, training, loss_kind):
        head.load_state_dict(init_state)
        head.train(training)
        enc = enc_bt.clone().requires_grad_(True)
        x = masked_concat_pool(enc, pad, BPTT)
        x.retain_grad()
        pooled = x
        put(prefix + "pooled", x)
        acts = []
        for k, blk in enumerate(head.layers):
            for m in blk:
                if isinstance(m, torch.nn.BatchNorm1d):
                    well_conditioned(x, training)
                    x = m(x)
                elif isinstance(m, torch.nn.Dropout):
                    if training:
                        x = x * masks[k]
                elif isinstance(m, torch.nn.Linear):
                    x = m(x)
                elif isinstance(m, torch.nn.ReLU):
                    x = F.relu(x)  # not in place, so the linear output can be kept
                else:
                    raise SystemExit(f"unexpected layer {m}")
            x.retain_grad()
            acts.append(x)
            put(prefix + f"out.{k}", x)
        logits = x
        if loss_kind == "bce":
            loss = F.binary_cross_entropy_with_logits(logits, y_multi)
        else:
            loss = F.cross_entropy(logits, y_single)
        loss.backward()
        put(prefix + "loss", loss.reshape(1))
        put(prefix + "d_enc", enc.grad.transpose(0, 1))
        put(prefix + "d_pooled", pooled.grad)
        for k, a in enumerate(acts):
            put(prefix + f"d_out.{k}", a.grad)
        for key, p in head.named_parameters():
            put(prefix + "g.1." + key, p.grad)
            p.grad = None
        for key, v in head.state_dict().items():
            if "running" in key:
                put(prefix + "b.1." + key, v)

    run("m.", True, "bce")
    run("s.", True, "ce")
    run("e.", False, "ce")

    # AR/TAR as fastai's RNNRegularizer (alpha 2, beta 1) on the (B,T,E) encoder output.
    out = enc_bt.clone().requires_grad_(True)
    reg = 2.0 * out.pow(2).mean() + 1.0 * (out[:, 1:] - out[:, :-1]).pow(2).mean()
    reg.backward()
    put("r.loss", reg.reshape(1))
    put("r.d_out", out.grad.transpose(0, 1))
    write(out_path)


for arg in sys.argv[1:]:
    tag, path = arg.split("=", 1)
    build(tag, path)
