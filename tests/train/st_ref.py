"""Reference side of test_safetensors: the `safetensors` package writes and reads.

  st_ref.py write DIR   writes DIR/py.safetensors (F32/F16/BF16/F64/I64 tensors, metadata)
                        and DIR/py_expected.json (each float tensor as float32 values)
  st_ref.py check FILE EXPECTED.json
                        loads FILE with safetensors and compares tensors and metadata exactly
"""
import json
import sys

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file


def write(d):
    g = torch.Generator().manual_seed(1234)
    t = {
        "f32.matrix": torch.randn(5, 7, generator=g),
        "f16.vec": (torch.randn(33, generator=g) * 3).half(),
        "bf16.cube": torch.randn(2, 3, 4, generator=g).bfloat16(),
        "f64.scalar_like": torch.randn(1, generator=g).double() * 1e3,
        "f64.matrix": torch.randn(3, 2, generator=g).double(),
        "i64.ids": torch.arange(6, dtype=torch.int64).reshape(2, 3),
        "f32.empty": torch.zeros(0, 4),
    }
    # F16 specials: subnormals, infinities, signed zero, max.
    t["f16.special"] = torch.tensor([6e-8, -6e-8, 1e-5, 65504.0, float("inf"), -float("inf"), -0.0, 0.5],
                                    dtype=torch.float16)
    save_file(t, f"{d}/py.safetensors", metadata={"format": "pt", "note": "kubefit é"})
    exp = {k: [float(x) for x in v.float().flatten().tolist()] for k, v in t.items() if v.is_floating_point()}
    exp = {k: [("inf" if x == float("inf") else "-inf" if x == -float("inf") else x) for x in v]
           for k, v in exp.items()}
    shapes = {k: list(v.shape) for k, v in t.items()}
    with open(f"{d}/py_expected.json", "w") as f:
        json.dump({"values": exp, "shapes": shapes}, f)


def check(path, exp_path):
    with open(exp_path) as f:
        exp = json.load(f)
    got = load_file(path)
    ok = True
    if sorted(got) != sorted(exp["values"]):
        print(f"names differ: {sorted(got)} vs {sorted(exp['values'])}")
        ok = False
    for k, vals in exp["values"].items():
        if k not in got:
            continue
        t = got[k]
        if t.dtype != torch.float32 or list(t.shape) != exp["shapes"][k]:
            print(f"{k}: dtype {t.dtype} shape {list(t.shape)}, expected float32 {exp['shapes'][k]}")
            ok = False
            continue
        ref = torch.tensor(vals, dtype=torch.float32).reshape(t.shape)
        if not torch.equal(ref, t):
            print(f"{k}: values differ")
            ok = False
    with safe_open(path, "pt") as f:
        meta = f.metadata()
    if meta != exp.get("metadata", {}):
        print(f"metadata {meta} != {exp.get('metadata')}")
        ok = False
    print("st_ref check:", "ok" if ok else "MISMATCH")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    if sys.argv[1] == "write":
        write(sys.argv[2])
    elif sys.argv[1] == "check":
        check(sys.argv[2], sys.argv[3])
    else:
        sys.exit(f"usage: {sys.argv[0]} write DIR | check FILE EXPECTED")
