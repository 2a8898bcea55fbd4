#!/usr/bin/env python3
"""Makes a ModelSlim W8A8_DYNAMIC checkpoint of the tiny DeepSeek V2 fixture with numpy only
(the published formulas, ../shared/reference/next-wave-facts.md section A; independent of
`c8 quantize`): every linear of attention (q_proj, kv_a_proj_with_mqa, o_proj) and of the
MLPs (dense, shared and routed experts) becomes per-channel symmetric int8 with
weight_scale (out, 1) and weight_offset zeros; kv_b_proj, the router (mlp.gate), embeddings,
norms and lm_head stay FLOAT, as msModelSlim's DeepSeek recipe keeps them.

    pip install numpy safetensors
    python tools/make_deepseek_w8a8_fixture.py

Writes tests/data/models/deepseek-v2-tiny-w8a8-dynamic/ (config.json, generation_config.json,
quant_model_description.json, quant_model_weights.safetensors) and, with torch + transformers
(a dev-only venv), deepseek-v2-tiny-w8a8-dynamic.ref.json / .ref.bin: the logits of every
prompt position of transformers' DeepseekV2 running the quantized model exactly -- each
quantized linear x -> (round(x / s_t) s_t) (W_q s_w)^T with s_t = absmax(x_t) / 127 per token --
in float64 (same layout as tools/make_model_fixtures.py, no greedy).
"""
import json
import os
import re
import shutil

import numpy as np
from safetensors.numpy import load_file, save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = os.path.join(ROOT, "tests", "data", "models")
SRC = os.path.join(MODELS, "deepseek-v2-tiny")
OUT = os.path.join(MODELS, "deepseek-v2-tiny-w8a8-dynamic")
QUANTIZED = re.compile(r"model\.layers\.\d+\.(self_attn\.(q_proj|kv_a_proj_with_mqa|o_proj)|"
                       r"mlp\.(shared_experts\.|experts\.\d+\.)?(gate|up|down)_proj)\.weight$")


def main():
    w = load_file(os.path.join(SRC, "model.safetensors"))
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    for f in ("config.json", "generation_config.json"):
        shutil.copy(os.path.join(SRC, f), OUT)
    tensors, desc = {}, {"model_quant_type": "W8A8_DYNAMIC", "version": "1.0.0"}
    count = 0
    for k, v in sorted(w.items()):
        if not QUANTIZED.match(k):
            tensors[k] = v.astype(np.float32)
            desc[k] = "FLOAT"
            continue
        W = v.astype(np.float64)
        s = np.abs(W).max(1) / 127.0
        s = np.where(s > 0, s, 1.0)
        n = k[: -len(".weight")]
        tensors[k] = np.clip(np.rint(W / s[:, None]), -127, 127).astype(np.int8)
        tensors[n + ".weight_scale"] = s.astype(np.float32)[:, None]
        tensors[n + ".weight_offset"] = np.zeros((W.shape[0], 1), np.float32)
        for t in ("weight", "weight_scale", "weight_offset"):
            desc[f"{n}.{t}"] = "W8A8_DYNAMIC"
        count += 1
    save_file(tensors, os.path.join(OUT, "quant_model_weights.safetensors"))
    json.dump(desc, open(os.path.join(OUT, "quant_model_description.json"), "w"), indent=1)
    print(f"wrote {OUT}: {count} W8A8_DYNAMIC linears")
    try:
        import torch
        import transformers
    except ImportError:
        print("no torch / transformers: reference logits not written")
        return
    model = transformers.AutoModelForCausalLM.from_pretrained(SRC, dtype=torch.float64).eval()
    sd = model.state_dict()

    def fake_quant(x):  # per-token symmetric int8, as W8A8_DYNAMIC quantizes activations
        amax = x.abs().amax(-1, keepdim=True)
        st = torch.where(amax > 0, amax / 127.0, torch.ones_like(amax))
        return torch.round(x / st) * st

    def deq(n):
        return torch.from_numpy(tensors[n + ".weight"].astype(np.float64) *
                                tensors[n + ".weight_scale"].astype(np.float64))

    expert = re.compile(r"(model\.layers\.\d+\.mlp\.experts)\.(\d+)\.(gate|up|down)_proj\.weight$")
    for k, v in tensors.items():
        if not (k.endswith(".weight") and v.dtype == np.int8):
            continue
        n = k[: -len(".weight")]
        m = expert.match(k)
        if m:  # transformers 5 keeps experts as 3-D tensors: gate_up_proj (E, 2I, H), down_proj
            base, e, part = m.group(1), int(m.group(2)), m.group(3)
            if part == "down":
                sd[base + ".down_proj"][e].copy_(deq(n))
            else:
                I = v.shape[0]
                rows = slice(0, I) if part == "gate" else slice(I, 2 * I)
                sd[base + ".gate_up_proj"][e][rows].copy_(deq(n))
            continue
        sd[k].copy_(deq(n))
        model.get_submodule(n).register_forward_pre_hook(lambda mod, args: (fake_quant(args[0]),))

    # The routed experts' activations are quantized too (before gate_up and before down).
    import torch.nn.functional as F

    def experts_forward(self, hidden_states, top_k_index, top_k_weights):
        out = torch.zeros_like(hidden_states)
        for e in range(self.num_experts):
            tok, pos = torch.where(top_k_index == e)
            if tok.numel() == 0:
                continue
            x = fake_quant(hidden_states[tok])
            gate, up = F.linear(x, self.gate_up_proj[e]).chunk(2, dim=-1)
            h = fake_quant(F.silu(gate) * up)
            y = F.linear(h, self.down_proj[e]) * top_k_weights[tok, pos, None]
            out.index_add_(0, tok, y.to(out.dtype))
        return out
    for mod in model.modules():
        if type(mod).__name__.endswith("Experts"):
            mod.forward = experts_forward.__get__(mod)
    ref = json.load(open(os.path.join(MODELS, "deepseek-v2-tiny.ref.json")))
    V = model.config.vocab_size
    blobs, entries, off = [], [], 0
    with torch.no_grad():
        for p in ref["prompts"]:
            lg = model(torch.tensor([p])).logits[0].to(torch.float32).numpy()
            entries.append({"offset": off, "positions": len(p), "vocab": V})
            off += lg.nbytes
            blobs.append(lg)
    np.concatenate([b.reshape(-1) for b in blobs]).tofile(OUT + ".ref.bin")
    json.dump({"prompts": ref["prompts"], "logits": entries}, open(OUT + ".ref.json", "w"))
    print(f"wrote {OUT}.ref.json / .ref.bin")


if __name__ == "__main__":
    main()
