#!/usr/bin/env bash
# Runs on the lent GPU machine (H100/H200) in one call: configures a backends-only build with
# CUDA, builds backend_cuda_tests and cuda_attention_bench, runs the tests (CUDA ops and paged
# attention against the CPU reference), compute-sanitizer memcheck on a reduced subset, the
# attention benchmark, PyTorch SDPA on the same shapes (peers), and prints a short table last. Logs go under $OUT (default ./out).
#   scripts/device_check.sh            # everything
#   C8_SKIP_MEMCHECK=1 scripts/device_check.sh
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${OUT:-$ROOT/out}"
BUILD="${C8_DEVICE_BUILD:-$ROOT/build-device}"
mkdir -p "$OUT"
summary=()
note() { summary+=("$1"); echo "== $1"; }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$OUT/gpu.txt" 2>&1
note "gpu: $(head -1 "$OUT/gpu.txt")"
if ! ldconfig -p 2>/dev/null | grep -q libopenblas && ! ls /usr/lib/*/libopenblas* >/dev/null 2>&1; then
  note "OpenBLAS: MISSING on this machine (the CPU backend needs it; configure will fail)"
else
  note "OpenBLAS: present"
fi

gen="Unix Makefiles"
command -v ninja >/dev/null && gen="Ninja"
nvcc="${CUDACXX:-/usr/local/cuda/bin/nvcc}"
t0=$(date +%s)
if ! cmake -S "$ROOT" -B "$BUILD" -G "$gen" -DC8_BACKENDS_ONLY=ON -DC8_CUDA=ON \
     -DCMAKE_CUDA_COMPILER="$nvcc" -DCMAKE_PROJECT_INCLUDE="$ROOT/cmake/cuda.cmake" \
     > "$OUT/configure.log" 2>&1; then
  tail -30 "$OUT/configure.log"
  note "configure: FAILED (see configure.log)"
  printf '%s\n' "${summary[@]}"
  exit 1
fi
note "$(grep -m1 -o 'c8: cuDNN prefill [A-Z]*.*' "$OUT/configure.log" || echo 'c8: cuDNN prefill: unknown')"
targets=(backend_cuda_tests cuda_attention_bench)
grep -q "cuDNN prefill ON" "$OUT/configure.log" && targets+=(cudnn_prefill_bench)
if ! cmake --build "$BUILD" --target "${targets[@]}" -j16 \
     > "$OUT/build.log" 2>&1; then
  grep -E "error|Error" "$OUT/build.log" | head -30
  note "build: FAILED (see build.log)"
  printf '%s\n' "${summary[@]}"
  exit 1
fi
note "build: ok in $(( $(date +%s) - t0 )) s"

t0=$(date +%s)
"$BUILD/backend_cuda_tests" > "$OUT/tests.log" 2>&1
rc=$?
grep -E "^\[  (PASSED|FAILED|SKIPPED) |Failure|error:|Expected|Which is|rel|Describe" "$OUT/tests.log" | head -60
note "tests: rc=$rc, $(grep -c '^\[       OK \]' "$OUT/tests.log") ok, $(grep -c '^\[  FAILED  \] [A-Za-z]' "$OUT/tests.log") failed, $(( $(date +%s) - t0 )) s"

if [ "${C8_SKIP_MEMCHECK:-0}" != "1" ]; then
  san="$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)"
  if [ -x "$san" ]; then
    t0=$(date +%s)
    C8_CUDA_QUICK=1 timeout 240 "$san" --tool memcheck --error-exitcode 7 \
      "$BUILD/backend_cuda_tests" --gtest_filter="${C8_MEMCHECK_FILTER:-CudaOps.*:CudaPagedAttention.AllStates*:CudnnPrefill.Ragged*:Kv/CudaGraphs.*}" \
      > "$OUT/memcheck.log" 2>&1
    mrc=$?
    tail -5 "$OUT/memcheck.log"
    note "memcheck (quick subset): rc=$mrc ($(grep -m1 -o 'ERROR SUMMARY: [0-9]* errors' "$OUT/memcheck.log" || echo 'no summary')), $(( $(date +%s) - t0 )) s"
  else
    note "memcheck: compute-sanitizer not found"
  fi
fi

timeout 200 "$BUILD/cuda_attention_bench" > "$OUT/bench.log" 2>&1
note "bench: rc=$?"
if [ -x "$BUILD/cudnn_prefill_bench" ]; then
  timeout 120 "$BUILD/cudnn_prefill_bench" > "$OUT/cudnn_bench.log" 2>&1
  note "cudnn prefill bench: rc=$?"
fi

# Peers on the same GPU and shapes: PyTorch SDPA bf16 decode on contiguous K/V (GQA) and SDPA
# causal prefill (flash, cuDNN when available). Skipped when torch is absent.
if [ "${C8_SKIP_SDPA:-0}" != "1" ]; then
  timeout 150 python3 "$ROOT/scripts/sdpa_peers.py" > "$OUT/sdpa.log" 2>&1
  note "sdpa peers: rc=$?"
fi
echo
echo "================ summary ================"
printf '%s\n' "${summary[@]}"
grep -A30 "^case" "$OUT/bench.log"
tail -6 "$OUT/cudnn_bench.log" 2>/dev/null
grep -A20 "^peer" "$OUT/sdpa.log" 2>/dev/null || tail -3 "$OUT/sdpa.log" 2>/dev/null
