#!/usr/bin/env python3
"""Regenerates the model reference fixtures under tests/data/models/ with transformers.

Needs torch + transformers + gguf (a dev-only venv; tests never need torch):
    python tools/make_model_fixtures.py [--gguf PATH] [--only NAME]

For each model it writes <name>/ (config.json + safetensors; tiny random-weight models
only) and <name>.ref.json + <name>.ref.bin:
  ref.json: {"prompts": [[ids...]...], "greedy": [[64 ids]...], "logits": [{"offset": byte
             offset into .bin, "positions": P, "vocab": V}...], "min_margin": ...}
  ref.bin:  float32 logits (P, V) for every prompt position, concatenated.
For SmolLM2 (real weights from the GGUF, rounded to bf16 exactly as `c8 convert` stores
them) only the top-64 logits of each position are stored (ids int32 + values float32)
plus each position's logsumexp, to keep the fixture small.
"""
import argparse
import json
import os
import struct
import sys

import numpy as np
import torch
import transformers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "data", "models")
GREEDY = 64

TINY = {
    # name: (config class, kwargs, save dtype, shard size)
    "qwen3-tiny": ("Qwen3Config", dict(
        architectures=["Qwen3ForCausalLM"], hidden_size=64, intermediate_size=128,
        num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2, head_dim=32,
        vocab_size=320, max_position_embeddings=512, rms_norm_eps=1e-6, rope_theta=10000.0,
        tie_word_embeddings=True, initializer_range=0.15), torch.float32, None),
    "qwen2-tiny-yarn": ("Qwen2Config", dict(
        architectures=["Qwen2ForCausalLM"], hidden_size=96, intermediate_size=160,
        num_hidden_layers=2, num_attention_heads=6, num_key_value_heads=2,
        vocab_size=300, max_position_embeddings=1024, rms_norm_eps=1e-6, rope_theta=1000000.0,
        tie_word_embeddings=False, initializer_range=0.15,
        rope_scaling={"rope_type": "yarn", "factor": 4.0,
                      "original_max_position_embeddings": 32}), torch.bfloat16, "60KB"),
    "llama-tiny-llama3": ("LlamaConfig", dict(
        architectures=["LlamaForCausalLM"], hidden_size=64, intermediate_size=96,
        num_hidden_layers=2, num_attention_heads=8, num_key_value_heads=1,
        vocab_size=288, max_position_embeddings=1024, rms_norm_eps=1e-5, rope_theta=500000.0,
        tie_word_embeddings=False, initializer_range=0.3,
        rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                      "high_freq_factor": 4.0, "original_max_position_embeddings": 64}),
        torch.float16, None),
    # DeepSeek V2 (V2-Lite-like: plain q projection, softmax routing, greedy top-k) and V3
    # (q LoRA, sigmoid routing with the correction bias, grouped top-k), MLA with YaRN mscale.
    "deepseek-v2-tiny": ("DeepseekV2Config", dict(
        architectures=["DeepseekV2ForCausalLM"], hidden_size=64, intermediate_size=128,
        moe_intermediate_size=32, num_hidden_layers=3, first_k_dense_replace=1,
        num_attention_heads=4, num_key_value_heads=4, q_lora_rank=None, kv_lora_rank=32,
        qk_nope_head_dim=16, qk_rope_head_dim=8, v_head_dim=16, n_routed_experts=8,
        num_experts_per_tok=2, n_shared_experts=1, topk_method="greedy", n_group=1,
        topk_group=1, norm_topk_prob=False, routed_scaling_factor=1.0, scoring_func="softmax",
        vocab_size=320, max_position_embeddings=512, rms_norm_eps=1e-6, rope_theta=10000.0,
        tie_word_embeddings=False, initializer_range=0.15, attention_bias=False,
        rope_scaling={"type": "yarn", "rope_type": "yarn", "factor": 4.0,
                      "original_max_position_embeddings": 64, "beta_fast": 32, "beta_slow": 1,
                      "mscale": 0.707, "mscale_all_dim": 0.707}), torch.float32, None),
    "deepseek-v3-tiny": ("DeepseekV3Config", dict(
        architectures=["DeepseekV3ForCausalLM"], hidden_size=64, intermediate_size=128,
        moe_intermediate_size=32, num_hidden_layers=3, first_k_dense_replace=1,
        num_attention_heads=4, num_key_value_heads=4, q_lora_rank=24, kv_lora_rank=32,
        qk_nope_head_dim=16, qk_rope_head_dim=8, v_head_dim=16, n_routed_experts=16,
        num_experts_per_tok=4, n_shared_experts=1, topk_method="noaux_tc", n_group=4,
        topk_group=2, norm_topk_prob=True, routed_scaling_factor=2.5, scoring_func="sigmoid",
        vocab_size=320, max_position_embeddings=512, rms_norm_eps=1e-6, rope_theta=10000.0,
        tie_word_embeddings=False, initializer_range=0.15, attention_bias=False,
        rope_scaling={"type": "yarn", "rope_type": "yarn", "factor": 4.0,
                      "original_max_position_embeddings": 64, "beta_fast": 32, "beta_slow": 1,
                      "mscale": 1.0, "mscale_all_dim": 1.0}), torch.bfloat16, None),
}


def greedy_margin(logits):
    top2 = torch.topk(logits.float(), 2, dim=-1).values
    return float((top2[..., 0] - top2[..., 1]).min())


@torch.no_grad()
def reference(model, prompts, store_topk=None):
    logits_blobs, greedy, margins = [], [], []
    for ids in prompts:
        x = torch.tensor([ids])
        logits = model(x).logits[0].float()  # (P, V)
        margins.append(greedy_margin(logits))
        if store_topk:
            vals, idx = torch.topk(logits, store_topk, dim=-1)
            lse = torch.logsumexp(logits, dim=-1)
            logits_blobs.append((idx.to(torch.int32).numpy(), vals.numpy(), lse.numpy()))
        else:
            logits_blobs.append(logits.numpy().astype(np.float32))
        out = model.generate(x, max_new_tokens=GREEDY, min_new_tokens=GREEDY, do_sample=False,
                             eos_token_id=None, pad_token_id=0, output_scores=True,
                             return_dict_in_generate=True)
        seq = out.sequences[0, len(ids):].tolist()
        greedy.append(seq)
        margins.append(min(greedy_margin(s[0]) for s in out.scores))
    return logits_blobs, greedy, min(margins)


def write_ref(name, prompts, blobs, greedy, margin, topk=None, extra=None):
    meta = {"prompts": prompts, "greedy": greedy, "min_margin": margin, "logits": []}
    with open(os.path.join(OUT, name + ".ref.bin"), "wb") as f:
        for b in blobs:
            if topk:
                idx, vals, lse = b
                meta["logits"].append({"offset": f.tell(), "positions": int(idx.shape[0]),
                                       "topk": topk})
                f.write(idx.tobytes()); f.write(vals.tobytes()); f.write(lse.tobytes())
            else:
                meta["logits"].append({"offset": f.tell(), "positions": int(b.shape[0]),
                                       "vocab": int(b.shape[1])})
                f.write(b.tobytes())
    if extra:
        meta.update(extra)
    with open(os.path.join(OUT, name + ".ref.json"), "w") as f:
        json.dump(meta, f)
    print(f"{name}: {len(prompts)} prompts, min greedy margin {margin:.4f}")


def make_tiny(name):
    cls_name, kw, dtype, shard = TINY[name]
    torch.manual_seed(1234)
    cfg = getattr(transformers, cls_name)(**kw)
    model = transformers.AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    # Random biases and norm weights too, so every tensor matters.
    for n, p in model.named_parameters():
        if n.endswith("bias") or "norm" in n:
            p.data.normal_(1.0 if "norm" in n else 0.0, 0.2)
    for n, b in model.named_buffers():  # DeepSeek V3's routing correction bias
        if n.endswith("e_score_correction_bias"):
            b.data.normal_(0.0, 0.2)
    # Round to the saved dtype, then run the reference in float32 on exactly those values.
    model = model.to(dtype).to(torch.float32).eval()
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        os.remove(os.path.join(d, f))
    save_kw = {"max_shard_size": shard} if shard else {}
    model.to(dtype).save_pretrained(d, safe_serialization=True, **save_kw)
    # Reload: casting a module also rounds its rotary inv_freq buffer, which would taint
    # the reference; a fresh load in float32 computes it anew.
    model = transformers.AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32).eval()
    cfg_path = os.path.join(d, "config.json")
    c = json.load(open(cfg_path))
    c["torch_dtype"] = str(dtype).replace("torch.", "")
    json.dump(c, open(cfg_path, "w"), indent=2)
    rng = np.random.default_rng(7)
    prompts = [rng.integers(0, kw["vocab_size"], size=n).tolist() for n in (1, 5, 17, 40, 80)]
    blobs, greedy, margin = reference(model, prompts)
    write_ref(name, prompts, blobs, greedy, margin)


def make_smollm2(gguf_path):
    d, f = os.path.split(os.path.abspath(gguf_path))
    tok = transformers.AutoTokenizer.from_pretrained(d, gguf_file=f)
    model = transformers.AutoModelForCausalLM.from_pretrained(d, gguf_file=f,
                                                              dtype=torch.float32)
    # c8 convert stores bf16: run the reference on the same bf16-rounded weights.
    model = model.to(torch.bfloat16).to(torch.float32).eval()
    # Casting also rounded the rotary inv_freq buffer: rebuild it in float32.
    rot = model.model.rotary_emb
    model.model.rotary_emb = type(rot)(config=model.config)
    texts = [
        "The capital of France is",
        "def fibonacci(n):\n",
        "Once upon a time, in a small village by the sea,",
        "<|im_start|>user\nWhat is 17 * 23?<|im_end|>\n<|im_start|>assistant\n",
        "Water boils at 100 degrees Celsius. At high altitude, it",
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
        "Face<|im_end|>\n<|im_start|>user\nWrite a haiku about autumn.<|im_end|>\n"
        "<|im_start|>assistant\n",
    ]
    prompts = [tok(t, add_special_tokens=False).input_ids for t in texts]
    blobs, greedy, margin = reference(model, prompts, store_topk=64)
    sd = model.state_dict()
    checks = {}
    for n in ["model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight",
              "model.layers.0.self_attn.k_proj.weight", "model.layers.29.mlp.down_proj.weight",
              "model.norm.weight"]:
        t = sd[n].float()
        checks[n] = {"shape": list(t.shape), "sum": float(t.double().sum()),
                     "abs_sum": float(t.double().abs().sum()),
                     "first": t.flatten()[:8].tolist(), "row1_first": t.reshape(t.shape[0], -1)[1, :8].tolist()
                     if t.dim() == 2 else []}
    write_ref("smollm2", prompts, blobs, greedy, margin, topk=64,
              extra={"texts": texts, "tensors": checks})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gguf", default=os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--only")
    a = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    for name in TINY:
        if a.only in (None, name):
            make_tiny(name)
    if a.only in (None, "smollm2"):
        make_smollm2(a.gguf)


if __name__ == "__main__":
    main()
