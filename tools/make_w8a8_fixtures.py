#!/usr/bin/env python3
"""Makes ModelSlim W8A8 / W8A8_DYNAMIC checkpoints of the tiny random Qwen3 fixture and their
reference logits, with numpy only, following the published formulas
(../shared/reference/next-wave-facts.md section A) -- independent of `c8 quantize`.

    pip install numpy safetensors
    python tools/make_w8a8_fixtures.py

Writes tests/data/models/qwen3-tiny-w8a8{,-dynamic}/ (config.json, generation_config.json,
quant_model_description.json, quant_model_weights.safetensors) and
<name>.ref.json + <name>.ref.bin (float32 logits of every prompt position from an fp64
forward of the quantized model, same layout as tools/make_model_fixtures.py, no greedy).

Static W8A8: per-channel symmetric int8 weights (scale absmax / 127); per-tensor asymmetric
activation ranges (min / max over a calibration sequence, scale (max - min) / 255, integer
offset -128 - round(min / scale)); deq_scale = input_scale * weight_scale (float32, one layer as
int64 holding the float32 bits as fp16 exports do); quant_bias = round(bias / deq -
offset * sum_k W_q). Layer 0 also gets a non-zero input_layernorm.bias (anti-outlier
smoothing). W8A8_DYNAMIC: the same weights, weight_scale (out, 1), weight_offset zeros;
activations per token symmetric at run time.
"""
import json
import os
import shutil

import numpy as np
from safetensors.numpy import load_file, save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = os.path.join(ROOT, "tests", "data", "models")
SRC = os.path.join(MODELS, "qwen3-tiny")
LINEARS = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
           "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]


def rms(x, w, eps, b=None):
    y = x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w
    return y if b is None else y + b


def rope(x, pos, theta):
    d = x.shape[-1]
    inv = 1.0 / theta ** (np.arange(0, d, 2, dtype=np.float64) / d)
    ang = pos[:, None] * inv[None, :]
    cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    x1, x2 = x[..., : d // 2], x[..., d // 2:]
    return np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1)


class Model:
    def __init__(self, cfg, w, linear):
        self.c, self.w, self.linear = cfg, w, linear  # linear(name, x) -> y

    def forward(self, ids, observe=None):
        c, w = self.c, self.w
        H, D = c["hidden_size"], c["head_dim"]
        hq, hkv = c["num_attention_heads"], c["num_key_value_heads"]
        eps, theta = c["rms_norm_eps"], c.get("rope_theta", c.get("rope_parameters", {}).get(
            "rope_theta", 10000.0))
        T = len(ids)
        pos = np.arange(T, dtype=np.float64)
        x = w["model.embed_tokens.weight"][ids].astype(np.float64)
        for l in range(c["num_hidden_layers"]):
            p = f"model.layers.{l}."
            h = rms(x, w[p + "input_layernorm.weight"], eps, w.get(p + "input_layernorm.bias"))
            q = self.linear(p + "self_attn.q_proj", h, observe).reshape(T, hq, D)
            k = self.linear(p + "self_attn.k_proj", h, observe).reshape(T, hkv, D)
            v = self.linear(p + "self_attn.v_proj", h, observe).reshape(T, hkv, D)
            q = rope(rms(q, w[p + "self_attn.q_norm.weight"], eps), pos, theta)
            k = rope(rms(k, w[p + "self_attn.k_norm.weight"], eps), pos, theta)
            g = hq // hkv
            out = np.zeros((T, hq, D))
            mask = np.triu(np.full((T, T), -np.inf), 1)
            for hh in range(hq):
                s = q[:, hh] @ k[:, hh // g].T / np.sqrt(D) + mask
                s = np.exp(s - s.max(-1, keepdims=True))
                out[:, hh] = (s / s.sum(-1, keepdims=True)) @ v[:, hh // g]
            x = x + self.linear(p + "self_attn.o_proj", out.reshape(T, hq * D), observe)
            h = rms(x, w[p + "post_attention_layernorm.weight"], eps)
            gate = self.linear(p + "mlp.gate_proj", h, observe)
            up = self.linear(p + "mlp.up_proj", h, observe)
            act = gate / (1.0 + np.exp(-gate)) * up
            x = x + self.linear(p + "mlp.down_proj", act, observe)
        x = rms(x, w["model.norm.weight"], eps)
        head = w.get("lm_head.weight", w["model.embed_tokens.weight"])
        return x @ head.astype(np.float64).T


def main():
    cfg = json.load(open(os.path.join(SRC, "config.json")))
    fw = {k: v.astype(np.float64) for k, v in load_file(os.path.join(SRC, "model.safetensors")).items()}
    rng = np.random.default_rng(7)
    V = cfg["vocab_size"]

    # The float model reproduces the transformers reference (sanity check of this forward).
    ref = json.load(open(os.path.join(MODELS, "qwen3-tiny.ref.json")))
    ref_bin = np.fromfile(os.path.join(MODELS, "qwen3-tiny.ref.bin"), dtype=np.float32)
    fm = Model(cfg, fw, lambda n, x, o: x @ fw[n + ".weight"].T)
    for prompt, lm in zip(ref["prompts"], ref["logits"]):
        got = fm.forward(np.array(prompt))
        want = ref_bin[lm["offset"] // 4: lm["offset"] // 4 + lm["positions"] * V].reshape(-1, V)
        assert np.abs(got - want).max() < 1e-3 * np.abs(want).max(), "float forward mismatch"

    # Anti-outlier smoothing's norm bias on layer 0 (FLOAT), in both checkpoints.
    fw["model.layers.0.input_layernorm.bias"] = rng.normal(0, 0.05, cfg["hidden_size"])

    # Calibration: per-linear input ranges on the float model.
    calib = rng.integers(0, V, 96)
    ranges = {}

    def observe_linear(n, x, observe):
        lo, hi = ranges.get(n, (np.inf, -np.inf))
        ranges[n] = (min(lo, x.min()), max(hi, x.max()))
        return x @ fw[n + ".weight"].T

    Model(cfg, fw, observe_linear).forward(calib)

    wq, wscale = {}, {}
    for n in [f"model.layers.{l}.{s}" for l in range(cfg["num_hidden_layers"]) for s in LINEARS]:
        W = fw[n + ".weight"]
        s = np.abs(W).max(1) / 127.0
        wq[n] = np.clip(np.rint(W / s[:, None]), -127, 127).astype(np.int8)
        wscale[n] = s.astype(np.float32)

    prompts = [list(rng.integers(0, V, L)) for L in (1, 6, 19, 45)]
    for scheme in ("W8A8", "W8A8_DYNAMIC"):
        name = "qwen3-tiny-w8a8" + ("-dynamic" if scheme == "W8A8_DYNAMIC" else "")
        out = os.path.join(MODELS, name)
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(out)
        for f in ("config.json", "generation_config.json"):
            shutil.copy(os.path.join(SRC, f), out)
        tensors, desc = {}, {"model_quant_type": scheme, "version": "1.0.0"}
        params = {}
        for k, v in fw.items():
            layer_linear = any(k == f"{n}.weight" for n in wq)
            if layer_linear:
                continue
            tensors[k] = v.astype(np.float32)
            desc[k] = "FLOAT"
        for n in wq:
            W, s_w = wq[n], wscale[n].astype(np.float64)
            tensors[n + ".weight"] = W
            if scheme == "W8A8_DYNAMIC":
                tensors[n + ".weight_scale"] = wscale[n][:, None]
                tensors[n + ".weight_offset"] = np.zeros((W.shape[0], 1), np.float32)
                names = ("weight", "weight_scale", "weight_offset")
            else:
                lo, hi = ranges[n]
                lo, hi = min(lo, 0.0), max(hi, 0.0)
                s_x = np.float32((hi - lo) / 255.0)
                o_x = np.float32(-128 - np.rint(lo / s_x))
                deq = (np.float64(s_x) * s_w).astype(np.float32)
                qb = np.rint(0.0 / deq - float(o_x) * W.astype(np.int64).sum(1)).astype(np.int32)
                tensors[n + ".input_scale"] = np.array([s_x], np.float32)
                tensors[n + ".input_offset"] = np.array([o_x], np.float32)
                if n == "model.layers.1.self_attn.o_proj":  # fp16-export form: float bits in int64
                    tensors[n + ".deq_scale"] = deq.view(np.int32).astype(np.int64)
                else:
                    tensors[n + ".deq_scale"] = deq
                tensors[n + ".quant_bias"] = qb
                params[n] = (float(s_x), float(o_x), deq.astype(np.float64), qb)
                names = ("weight", "input_scale", "input_offset", "deq_scale", "quant_bias")
            for t in names:
                desc[f"{n}.{t}"] = scheme
        save_file(tensors, os.path.join(out, "quant_model_weights.safetensors"))
        json.dump(desc, open(os.path.join(out, "quant_model_description.json"), "w"), indent=1)

        def qlinear(n, x, observe):
            if n not in wq:
                return x @ fw[n + ".weight"].T
            W = wq[n].astype(np.float64)
            if scheme == "W8A8_DYNAMIC":
                amax = np.abs(x).max(-1, keepdims=True)
                st = np.where(amax > 0, amax / 127.0, 1.0)
                xq = np.rint(x / st)
                return (xq @ W.T) * wscale[n].astype(np.float64) * st
            s_x, o_x, deq, qb = params[n]
            xq = np.clip(np.rint(x / s_x + o_x), -128, 127)
            return (xq @ W.T + qb) * deq

        qm = Model(cfg, fw, qlinear)
        logits, entries, off = [], [], 0
        for p in prompts:
            lg = qm.forward(np.array(p)).astype(np.float32)
            entries.append({"offset": off, "positions": len(p), "vocab": V})
            off += lg.nbytes
            logits.append(lg)
        np.concatenate([l.reshape(-1) for l in logits]).tofile(os.path.join(MODELS, name + ".ref.bin"))
        json.dump({"prompts": [[int(t) for t in p] for p in prompts], "logits": entries},
                  open(os.path.join(MODELS, name + ".ref.json"), "w"))
        print("wrote", out)


if __name__ == "__main__":
    main()
