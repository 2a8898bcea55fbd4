#!/usr/bin/env bash
# Runs on the lent GPU machine with binaries built on the dev machine (the GPU image lacks
# cpp-httplib and PCRE2): .carry2/carry.tar.xz holds c8, backend_cuda_tests,
# cuda_attention_bench, cudnn_prefill_bench and their non-CUDA shared libraries in lib/
# (make it with scripts/pack_device_carry.sh). CUDA libraries come from the image (toolkit,
# and the nvidia-* wheels next to PyTorch for NCCL / cuDNN).
#   scripts/device_engine_check.sh tests|bench|latency|serve|w8a8|serve32b|all
#   (serve32b: QUANT=w8a8|none, BATCHED=max-num-batched-tokens, PROMPTS_X2=prompts per
#   sequence the cache holds, times 2)
set -uo pipefail
what="${1:-all}"
OUT="${OUT:-$PWD/out}"
mkdir -p "$OUT" /tmp/c8
export NCCL_NVLS_ENABLE=0
tar -C /tmp/c8 -xJf .carry2/carry.tar.xz
wheel_libs=$(python3 - <<'PY'
import importlib, os
dirs = []
for m in ("nvidia.nccl", "nvidia.cudnn", "nvidia.cublas", "nvidia.cuda_nvrtc", "nvidia.cuda_runtime"):
    try:
        for p in importlib.import_module(m).__path__:
            dirs.append(os.path.join(p, "lib"))
    except Exception:
        pass
print(":".join(dirs))
PY
)
export LD_LIBRARY_PATH="/tmp/c8/lib:/usr/local/cuda/lib64:/usr/local/cuda/lib:$wheel_libs:${LD_LIBRARY_PATH:-}"
if ldd /tmp/c8/c8 | grep "not found"; then echo "missing libraries"; exit 1; fi
# Test binaries look for fixtures under the dev machine's source path.
if [ ! -e /work/main ]; then mkdir -p /work && ln -s "$PWD" /work/main; fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
summary=()
if [[ $what == tests || $what == all ]]; then
  t0=$(date +%s)
  /tmp/c8/backend_cuda_tests > "$OUT/tests.log" 2>&1
  rc=$?
  grep -E "^\[  FAILED|Failure|graphs vs eager|rel err|worst" "$OUT/tests.log" | head -40
  summary+=("cuda tests: rc=$rc, $(grep -c '^\[       OK \]' "$OUT/tests.log") ok, $(grep -c '^\[  FAILED  \] [A-Za-z]' "$OUT/tests.log") failed, $(grep -c '^\[  SKIPPED \]' "$OUT/tests.log") skipped, $(( $(date +%s) - t0 )) s")
fi
if [[ $what == bench || $what == all ]]; then
  timeout 200 /tmp/c8/cuda_attention_bench > "$OUT/bench.log" 2>&1
  summary+=("attention bench: rc=$?")
fi
if [[ $what == latency || $what == all ]]; then
  for kv in int8 bf16; do
    timeout 280 /tmp/c8/c8 bench latency -m configs/qwen3-8b --load-format dummy --device cuda \
      --kv-cache-dtype $kv --kv-cache-memory 40 --max-model-len 4200 --batch-size 64 \
      --input-len 4096 --output-len 64 --num-iters 1 --num-iters-warmup 1 \
      --max-num-batched-tokens 16384 > "$OUT/latency_$kv.log" 2>&1
    summary+=("latency $kv: rc=$? $(grep -iE 'decode' "$OUT/latency_$kv.log" | tail -2 | tr '\n' ' ')")
  done
fi
if [[ $what == serve || $what == all ]]; then
  # c8 serve + c8 bench serve on the Qwen3-8B shape (dummy weights, C8 KV): per-token
  # streaming shows as mean ITL close to mean TPOT.
  port=8123
  /tmp/c8/c8 serve configs/qwen3-8b --load-format dummy --kv-cache-dtype int8 \
    --max-model-len 4096 --port $port -q > "$OUT/serve.log" 2>&1 &
  spid=$!
  for _ in $(seq 1 360); do
    curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
    kill -0 $spid 2>/dev/null || break
    sleep 0.5
  done
  for conc in 64 128; do
    timeout 200 /tmp/c8/c8 bench serve --port $port --random-input-len 1024 \
      --random-output-len 256 --num-prompts $((conc * 4)) --max-concurrency $conc --ignore-eos \
      --percentile-metrics ttft,tpot,itl,e2el --metric-percentiles 50,99 --disable-tqdm \
      > "$OUT/bench_serve_c$conc.log" 2>&1
    summary+=("bench serve c=$conc: rc=$? $(grep -E 'Output token throughput|Peak output|Mean TPOT|Mean ITL' "$OUT/bench_serve_c$conc.log" | tr -s ' ' | tr '\n' ';')")
  done
  kill -INT $spid; wait $spid
  summary+=("serve exit: $?")
fi
if [[ $what == w8a8 ]]; then
  # W8A8 GEMMs beside bf16 (decode and prefill shapes of Qwen3-32B), then the Qwen3-8B decode
  # step with 16-bit, W8A8 and W8A8_DYNAMIC linears (dummy weights, C8 KV).
  /tmp/c8/backend_cuda_tests --gtest_filter='CudaQuantLinear*' > "$OUT/w8a8_tests.log" 2>&1
  summary+=("w8a8 tests: rc=$? $(grep -c '^\[       OK \]' "$OUT/w8a8_tests.log") ok")
  grep -E "w8a8-bench|Failure|differ" "$OUT/w8a8_tests.log" | head -40
  for q in none w8a8 w8a8_dynamic; do
    timeout 240 /tmp/c8/c8 bench latency -m configs/qwen3-8b --load-format dummy --device cuda \
      --quantization $q --kv-cache-dtype int8 --kv-cache-memory 40 --max-model-len 4200 \
      --batch-size 64 --input-len 4096 --output-len 64 --num-iters 1 --num-iters-warmup 1 \
      --max-num-batched-tokens 16384 > "$OUT/latency_$q.log" 2>&1
    summary+=("latency $q: rc=$? $(grep -iE 'decode|error' "$OUT/latency_$q.log" | tail -2 | tr '\n' ' ')")
  done
fi
if [[ $what == serve32b ]]; then
  # The seed's benchmark shape: Qwen3-32B (dummy weights, QUANT linears, C8 KV), random 10240
  # in / 2048 out, --ignore-eos, at the concurrency the KV cache holds (whole sequences).
  quant="${QUANT:-w8a8}"
  port=8124
  t_start=$(date +%s)
  /tmp/c8/c8 serve configs/qwen3-32b --load-format dummy --quantization "$quant" \
    --kv-cache-dtype int8 --max-model-len 12300 --max-num-batched-tokens "${BATCHED:-2048}" \
    --port $port -q > "$OUT/serve32b_$quant.log" 2>&1 &
  spid=$!
  for _ in $(seq 1 600); do
    curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
    kill -0 $spid 2>/dev/null || break
    sleep 0.5
  done
  tokens=$(grep -oE 'blocks = [0-9]+ tokens' "$OUT/serve32b_$quant.log" | head -1 | grep -oE '[0-9]+')
  conc=$(( ${tokens:-0} / 12288 ))
  [ "$conc" -lt 1 ] && conc=1
  summary+=("serve32b $quant: $(grep -E 'KV cache' "$OUT/serve32b_$quant.log" | head -1) -> concurrency $conc")
  summary+=("serve32b start: $(( $(date +%s) - t_start )) s")
  timeout "${BENCH_TIMEOUT:-$(( 575 - ($(date +%s) - t_start) ))}" /tmp/c8/c8 bench serve \
    --port $port --random-input-len 10240 \
    --random-output-len 2048 --num-prompts $((conc * ${PROMPTS_X2:-4} / 2)) \
    --max-concurrency $conc --ignore-eos --percentile-metrics ttft,tpot,itl,e2el \
    --metric-percentiles 50,99 --disable-tqdm > "$OUT/bench32b_$quant.log" 2>&1
  summary+=("bench32b $quant c=$conc: rc=$? $(grep -E 'Output token throughput|Total token|Mean TPOT|Mean TTFT|Mean ITL|Successful' "$OUT/bench32b_$quant.log" | tr -s ' ' | tr '\n' ';')")
  kill -INT $spid; wait $spid
  summary+=("serve exit: $?")
fi
echo "================ summary ================"
printf '%s\n' "${summary[@]}"
grep -A30 "^case" "$OUT/bench.log" 2>/dev/null
