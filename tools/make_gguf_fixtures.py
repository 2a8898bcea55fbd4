#!/usr/bin/env python3
"""Regenerates tests/data/gguf/ (fixtures of tests/formats/gguf_test.cpp).

Outputs:
  types.gguf            small GGUF v3 file written with the `gguf` package: one metadata key of
                        every value type (arrays of strings/ints/floats/bools, a nested array)
                        and one 2-row tensor per ggml type the dequantizer supports (F32, F16,
                        BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 quantized by gguf.quants.quantize;
                        Q2_K..Q6_K crafted from random bytes with sane float16 scales).
  types_expected.json   per tensor: ggml type, ne, and the float32 values produced by
                        gguf.quants.dequantize (the reference implementation).
  smollm2_reference.json  reference values of the real SmolLM2 GGUF (only when it is found):
                        dequantized rows of token_embd / attn_q / attn_k / attn_v / norms, with
                        Q and K rows un-permuted to the HF layout, as float32 and bf16 values
                        plus row sums.

Usage: tools/make_gguf_fixtures.py [path/to/SmolLM2-135M-Instruct.Q4_1.gguf]
(default: $C8_SMOLLM2_GGUF, else models/SmolLM2-135M-Instruct.Q4_1.gguf).
"""
import json
import os
import sys
from pathlib import Path

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "data" / "gguf"


def llamacpp_permute(w, n_head):
    """llama.cpp convert_hf_to_gguf.py LlamaModel.permute (HF -> GGUF row order)."""
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def unpermute(w, n_head):
    """Inverse of llamacpp_permute (GGUF -> HF row order)."""
    return (w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def check_permutation():
    rng = np.random.default_rng(1)
    for n_head, hd in [(9, 64), (3, 64), (2, 8)]:
        w = rng.standard_normal((n_head * hd, 5))
        assert np.array_equal(unpermute(llamacpp_permute(w, n_head), n_head), w)
        g = llamacpp_permute(w, n_head)
        # index form used by the C++ converter: hf[h*hd + i*hd/2 + j] = gguf[h*hd + 2j + i]
        for r in range(n_head * hd):
            h, rr = divmod(r, hd)
            i, j = divmod(rr, hd // 2)
            assert np.array_equal(w[r], g[h * hd + 2 * j + i])


def bf16_round(x):
    b = gguf.quants.quantize(np.ascontiguousarray(x, dtype=np.float32), T.BF16)
    return gguf.quants.dequantize(b, T.BF16)


def f16_bytes(v):
    return np.array([v], dtype=np.float16).view(np.uint8)


def craft_k_blocks(qtype, n_blocks, rng):
    """Random K-quant blocks with finite, moderate float16 d/dmin fields."""
    _, type_size = gguf.GGML_QUANT_SIZES[qtype]
    b = rng.integers(0, 256, size=(n_blocks, type_size), dtype=np.uint8)
    for k in range(n_blocks):
        d = f16_bytes(0.01 + 0.02 * k)
        dmin = f16_bytes(0.005 + 0.01 * k)
        if qtype == T.Q2_K:      # scales[16] qs[64] d dmin
            b[k, 80:82], b[k, 82:84] = d, dmin
        elif qtype == T.Q3_K:    # hmask[32] qs[64] scales[12] d
            b[k, 108:110] = d
        elif qtype in (T.Q4_K, T.Q5_K):  # d dmin scales...
            b[k, 0:2], b[k, 2:4] = d, dmin
        elif qtype == T.Q6_K:    # ql[128] qh[64] scales[16] d
            b[k, 208:210] = d
    return b


def make_types(rng):
    w = gguf.GGUFWriter(str(OUT / "types.gguf"), arch="test")
    w.add_custom_alignment(64)
    w.add_uint8("test.u8", 200)
    w.add_int8("test.i8", -100)
    w.add_uint16("test.u16", 60000)
    w.add_int16("test.i16", -30000)
    w.add_uint32("test.u32", 4000000000)
    w.add_int32("test.i32", -2000000000)
    w.add_float32("test.f32", 0.15625)
    w.add_uint64("test.u64", 2**63 + 5)
    w.add_int64("test.i64", -(2**62))
    w.add_float64("test.f64", 3.141592653589793)
    w.add_bool("test.bool", True)
    w.add_string("test.string", "h\u00e9llo w\u00f6rld")
    w.add_array("test.arr_str", ["a", "bc", "", "\u0120Hello"])
    w.add_key_value("test.arr_i32", [1, -2, 3], gguf.GGUFValueType.ARRAY, gguf.GGUFValueType.INT32)
    w.add_key_value("test.arr_f32", [0.5, -1.25], gguf.GGUFValueType.ARRAY,
                    gguf.GGUFValueType.FLOAT32)
    w.add_key_value("test.arr_bool", [True, False, True], gguf.GGUFValueType.ARRAY,
                    gguf.GGUFValueType.BOOL)
    w.add_array("test.nested", [[1, 2], [3]])

    expected = {}
    rows = 2
    for qt in [T.F32, T.F16, T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0,
               T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K]:
        name = "t." + qt.name
        block, _ = gguf.GGML_QUANT_SIZES[qt]
        n = 32 if block == 1 else (64 if block == 32 else 256)
        x = (rng.standard_normal((rows, n)) * 0.7).astype(np.float32)
        if qt == T.F32:
            w.add_tensor(name, x)
            values = x
        elif qt == T.F16:
            h = x.astype(np.float16)
            w.add_tensor(name, h)
            values = h.astype(np.float32)
        elif block > 1 and qt in (T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K):
            raw = craft_k_blocks(qt, rows * n // block, rng).reshape(rows, -1)
            w.add_tensor(name, raw, raw_dtype=qt)
            values = gguf.quants.dequantize(raw, qt)
        else:
            raw = gguf.quants.quantize(x, qt)
            w.add_tensor(name, raw, raw_dtype=qt)
            values = gguf.quants.dequantize(raw, qt)
        values = np.asarray(values, dtype=np.float32).reshape(rows, n)
        assert np.all(np.isfinite(values)), name
        expected[name] = {"type": int(qt), "ne": [n, rows],
                          "values": [float(v) for v in values.ravel()]}
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with open(OUT / "types_expected.json", "w") as f:
        json.dump(expected, f)
        f.write("\n")


def make_smollm2_reference(path):
    r = gguf.GGUFReader(path)
    n_head = int(r.fields["llama.attention.head_count"].contents())
    n_kv = int(r.fields["llama.attention.head_count_kv"].contents())
    tensors = {t.name: t for t in r.tensors}

    def hf_matrix(name):
        t = tensors[name]
        m = np.asarray(gguf.quants.dequantize(t.data, t.tensor_type), dtype=np.float32)
        m = m.reshape(-1, int(t.shape[0]))  # rows x ne0
        if name.endswith("attn_q.weight"):
            m = unpermute(m, n_head)
        elif name.endswith("attn_k.weight"):
            m = unpermute(m, n_kv)
        return m

    ref = {"tensors": {}}
    picks = {
        "token_embd.weight": [0, 1, 2, 1000, 49151],
        "blk.0.attn_q.weight": [0, 1, 31, 32, 33, 63, 64, 575],
        "blk.0.attn_k.weight": [0, 1, 31, 32, 63, 64, 191],
        "blk.0.attn_v.weight": [0, 191],
        "blk.29.attn_k.weight": [5, 40, 100],
        "blk.5.ffn_down.weight": [3],
        "blk.0.attn_norm.weight": [0],
        "output_norm.weight": [0],
    }
    for name, rows in picks.items():
        m = hf_matrix(name)
        entry = {"rows": {}}
        for row in rows:
            v = m[row]
            entry["rows"][str(row)] = {
                "first_f32": [float(a) for a in v[:8]],
                "first_bf16": [float(a) for a in bf16_round(v[:8])],
                "sum": float(v.astype(np.float64).sum()),
                "abs_sum": float(np.abs(v.astype(np.float64)).sum()),
            }
        # Row-order sensitive checksum over the whole matrix: sum_r (r + 1) * sum(row r).
        rs = m.astype(np.float64).sum(axis=1)
        entry["weighted_row_sum"] = float(((np.arange(len(rs)) + 1) * rs).sum())
        entry["abs_sum"] = float(np.abs(m.astype(np.float64)).sum())
        ref["tensors"][name] = entry
    with open(OUT / "smollm2_reference.json", "w") as f:
        json.dump(ref, f, indent=1)
        f.write("\n")


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    check_permutation()
    make_types(np.random.default_rng(1234))
    model = (sys.argv[1] if len(sys.argv) > 1 else os.environ.get(
        "C8_SMOLLM2_GGUF", str(ROOT / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf")))
    if os.path.exists(model):
        make_smollm2_reference(model)
    else:
        print(f"{model} not found: smollm2_reference.json left as is", file=sys.stderr)


if __name__ == "__main__":
    main()
