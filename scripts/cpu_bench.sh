#!/usr/bin/env bash
# CPU figures of c8 on SmolLM2-135M-Instruct (16-bit and C8 KV): prefill/decode speed,
# KV bytes per token, batched throughput at 1, 4 and 16 concurrent sequences, and C8
# accuracy (calibrated on GPL-3, evaluated on MPL-2.0). Prints a short table last.
#   scripts/cpu_bench.sh [BUILD_DIR]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${1:-$ROOT/build}"
C8="$BUILD/c8"
MODEL="$ROOT/models/smollm2-135m-instruct"
C8MODEL="$ROOT/models/smollm2-135m-instruct-c8"
LOG="$(mktemp -d)"
if [[ ! -e "$C8MODEL/quant_model_description.json" ]]; then
  rm -rf "$C8MODEL"
  "$C8" calibrate -m "$MODEL" --data "$ROOT/data/text/gpl-3.txt" --out "$C8MODEL" 2>"$LOG/calib.log"
fi
"$C8" bench kv -m "$MODEL" --kv-cache-memory 1 | tee "$LOG/kv.txt"
for kv in bf16 int8; do
  m="$MODEL"; [[ $kv == int8 ]] && m="$C8MODEL"
  "$C8" bench latency -m "$m" --kv-cache-dtype "$kv" --batch-size 1 --input-len 512 \
    --output-len 128 --num-iters 2 --output-json "$LOG/lat_$kv.json" 2>/dev/null
  for c in 1 4 16; do
    "$C8" bench throughput -m "$m" --kv-cache-dtype "$kv" --input-len 128 --output-len 64 \
      --num-prompts 16 --max-num-seqs "$c" --output-json "$LOG/tput_${kv}_$c.json" 2>/dev/null \
      | grep Throughput
  done
done
"$C8" eval -m "$C8MODEL" --data "$ROOT/data/text/mpl-2.0.txt" 2>/dev/null | tee "$LOG/eval.json"
python3 - "$LOG" <<'PY'
import json, sys, os
d = sys.argv[1]
print("\n| KV | prefill tok/s (512) | decode tok/s (B1) | tput 1 seq | tput 4 seqs | tput 16 seqs (out tok/s) |")
print("|---|---|---|---|---|---|")
for kv in ("bf16", "int8"):
    lat = json.load(open(f"{d}/lat_{kv}.json"))
    t = [json.load(open(f"{d}/tput_{kv}_{c}.json"))["output_tokens_per_second"] for c in (1, 4, 16)]
    print(f"| {kv} | {lat['prefill_tokens_per_second']:.0f} | {lat['decode_tokens_per_second']:.1f} | "
          + " | ".join(f"{x:.1f}" for x in t) + " |")
e = json.load(open(f"{d}/eval.json"))
print(f"\nC8 eval on MPL-2.0 ({e['tokens_scored']} tokens): ppl {e['ppl']:.4f} vs {e['ppl_reference']:.4f} "
      f"(+{e['ppl_increase_pct']:.3f}%), mean KL {e['mean_kl']:.5f}, top-1 agreement {e['top1_agreement']:.4f}")
PY
