#!/usr/bin/env bash
# Installs every system and Python dependency of c8 on Debian 12 / Ubuntu (run as root or
# with sudo available). Idempotent: does nothing when everything is present.
set -euo pipefail

PKGS=(build-essential cmake ninja-build ccache pkg-config python3 python3-pip unzip curl
      nlohmann-json3-dev libcpp-httplib-dev libcli11-dev libspdlog-dev libfmt-dev
      libgtest-dev libgmock-dev libbenchmark-dev libpcre2-dev libopenblas-dev libxxhash-dev)
# utf8proc: Unicode normalization (NFC) for tokenizers that ask for it.
PKGS+=(libutf8proc-dev)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  echo "[c8] installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Python packages of the integration tests (the official openai client, pytest).
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
if ! python3 -c "import openai, pytest" >/dev/null 2>&1; then
  echo "[c8] installing Python test packages"
  req="$ROOT/tests/integration/requirements.txt"
  # Debian's own python3 refuses pip installs outside a venv (PEP 668): allow it there.
  python3 -m pip install -q --disable-pip-version-check -r "$req" ||
    python3 -m pip install -q --disable-pip-version-check --break-system-packages -r "$req"
fi

# cuDNN frontend (header-only C++ graph API) for the cuDNN prefill attention path: fetched from
# PyPI into .deps/ (ignored, never committed); cmake/cudnn.cmake picks it up when libcudnn is
# present. Optional: without it the CUDA backend builds without cuDNN.
CUDNN_FE_VERSION=1.32.0
CUDNN_FE_DIR="$ROOT/.deps/cudnn_frontend"
if [[ -x /usr/local/cuda/bin/nvcc ]] || command -v nvcc >/dev/null 2>&1; then
  if [[ ! -f "$CUDNN_FE_DIR/include/cudnn_frontend.h" ]]; then
    echo "[c8] fetching cudnn-frontend $CUDNN_FE_VERSION headers into .deps/"
    wheels="$ROOT/.deps/wheels"
    mkdir -p "$wheels"
    whl=""
    if python3 -m pip download -q --disable-pip-version-check --no-deps \
         "nvidia-cudnn-frontend==$CUDNN_FE_VERSION" -d "$wheels"; then
      whl="$(ls "$wheels"/nvidia_cudnn_frontend-"$CUDNN_FE_VERSION"-*.whl 2>/dev/null | head -1 || true)"
    fi
    if [[ -n "$whl" ]] && rm -rf "$CUDNN_FE_DIR.tmp" &&
       unzip -q -o "$whl" 'include/*' -d "$CUDNN_FE_DIR.tmp" &&
       [[ -f "$CUDNN_FE_DIR.tmp/include/cudnn_frontend.h" ]]; then
      rm -rf "$CUDNN_FE_DIR"
      mv "$CUDNN_FE_DIR.tmp" "$CUDNN_FE_DIR"
    else
      rm -rf "$CUDNN_FE_DIR.tmp"
      echo "[c8] warning: could not fetch cudnn-frontend $CUDNN_FE_VERSION; building without cuDNN" >&2
    fi
  fi
fi
