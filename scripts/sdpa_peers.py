#!/usr/bin/env python3
"""Peers of cuda_attention_bench on the same GPU and shapes (PyTorch, device machine only):
SDPA bf16 GQA decode on contiguous K/V and SDPA causal prefill (flash and cuDNN backends).
Prints a table: case, ms, TB/s (decode: K+V bytes / time), TFLOP/s (prefill: causal FLOPs)."""
import torch, torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
dev = "cuda"
def med(fn, reps, inner=1):
    """Median over reps of (inner back-to-back calls) / inner, like cuda_attention_bench."""
    for _ in range(3): fn()
    ts = []
    for _ in range(reps):
        a, b = torch.cuda.Event(True), torch.cuda.Event(True)
        a.record()
        for _ in range(inner): fn()
        b.record(); b.synchronize(); ts.append(a.elapsed_time(b) / inner)
    return sorted(ts)[len(ts) // 2]
rows = []
for B, L in ((64, 4096), (16, 32768), (1, 131072)):
    q = torch.randn(B, 32, 1, 128, device=dev, dtype=torch.bfloat16)
    k = torch.randn(B, 8, L, 128, device=dev, dtype=torch.bfloat16)
    v = torch.randn_like(k)
    try:
        fn = lambda: F.scaled_dot_product_attention(q, k, v, enable_gqa=True)
        ms = med(fn, 20)
        rows.append((f"sdpa bf16 decode B{B} L{L} (gqa)", ms, 2 * k.numel() * 2 / ms / 1e9, 0.0))
        ms = med(fn, 10, 10)
        rows.append((f"sdpa bf16 decode B{B} L{L} (gqa) b2b", ms, 2 * k.numel() * 2 / ms / 1e9, 0.0))
    except Exception as e:
        rows.append((f"sdpa bf16 decode B{B} L{L}: {type(e).__name__}", 0, 0, 0))
    del q, k, v
for T in (4096, 16384):
    q = torch.randn(1, 32, T, 128, device=dev, dtype=torch.bfloat16)
    k = torch.randn(1, 8, T, 128, device=dev, dtype=torch.bfloat16)
    v = torch.randn_like(k)
    kf, vf = k.repeat_interleave(4, 1), v.repeat_interleave(4, 1)
    flops = 2.0 * T * T * 128 * 32
    for name, be in (("flash", SDPBackend.FLASH_ATTENTION), ("cudnn", SDPBackend.CUDNN_ATTENTION)):
        try:
            with sdpa_kernel(be):
                ms = med(lambda: F.scaled_dot_product_attention(q, kf, vf, is_causal=True), 5)
            rows.append((f"sdpa {name} prefill causal T{T}", ms, 0.0, flops / ms / 1e9))
        except Exception as e:
            rows.append((f"sdpa {name} prefill T{T}: {type(e).__name__}", 0, 0, 0))
    del q, k, v, kf, vf
print(f"torch {torch.__version__}")
print("%-40s %10s %10s %10s" % ("peer (same shapes)", "ms", "TB/s", "TFLOP/s"))
for r in rows:
    print("%-40s %10.4f %10.3f %10.1f" % r)
