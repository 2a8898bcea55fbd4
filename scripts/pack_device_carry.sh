#!/usr/bin/env bash
# Packs the binaries of BUILD_DIR (default build/) and their non-CUDA shared libraries into
# .carry2/carry.tar.xz for scripts/device_engine_check.sh on the GPU machine.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${1:-$ROOT/build}"
stage=$(mktemp -d)
mkdir -p "$stage/lib" "$ROOT/.carry2"
for b in c8 backend_cuda_tests cuda_attention_bench cudnn_prefill_bench; do
  [ -x "$BUILD/$b" ] && cp "$BUILD/$b" "$stage/" && strip "$stage/$b"
done
# Libraries from the system (not CUDA's, not libc/libstdc++): the GPU image has its own.
ldd "$BUILD/c8" | awk '/=> \/(usr\/)?lib\/x86_64/ {print $3}' | while read -r lib; do
  case "$(basename "$lib")" in
    libc.so*|libm.so*|libstdc++*|libgcc_s*|libpthread*|libdl.so*|librt.so*|libssl*|libcrypto*|libz.so*) ;;
    *) cp -L "$lib" "$stage/lib/" ;;
  esac
done
tar -C "$stage" -cJf "$ROOT/.carry2/carry.tar.xz" .
rm -rf "$stage"
ls -la "$ROOT/.carry2/carry.tar.xz"
