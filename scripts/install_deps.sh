#!/usr/bin/env bash
# Installs every system and Python dependency of c8 on Debian 12 / Ubuntu (run as root or
# with sudo available). Idempotent: does nothing when everything is present.
set -euo pipefail

PKGS=(build-essential cmake ninja-build ccache pkg-config python3 python3-pip unzip curl
      nlohmann-json3-dev libcpp-httplib-dev libcli11-dev libspdlog-dev libfmt-dev
      libgtest-dev libgmock-dev libbenchmark-dev libpcre2-dev libopenblas-dev libxxhash-dev)
# utf8proc: Unicode normalization (NFC) for tokenizers that ask for it.
PKGS+=(libutf8proc-dev)
# UCX: the KV transfer data path of prefill/decode disaggregation.
PKGS+=(libucx-dev)

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

# xgrammar (Apache-2.0): the grammar engine of structured output (response_format json_schema /
# json_object, guided_json / guided_regex / guided_choice / guided_grammar, forced tool calls).
# Its C++ core is built from the PyPI source package (pinned, checksum verified) into .deps/
# (ignored, never committed); cmake/xgrammar.cmake compiles it. Without it c8 still builds, and
# requests asking for structured output get a 400 saying this build has no grammar engine.
XGRAMMAR_VERSION=0.2.9
XGRAMMAR_SHA256=87b466bca2475e29bb0323abc62c6c33cbcbcff47e5fb800a3e2099ac9620b90
XGRAMMAR_URL="https://files.pythonhosted.org/packages/3a/2f/5bf8e8fa6619cff534932f79b0abc81a417d354bc5093252c1a6081d0a93/xgrammar-$XGRAMMAR_VERSION.tar.gz"
XGRAMMAR_DIR="$ROOT/.deps/xgrammar"
if [[ ! -f "$XGRAMMAR_DIR/include/xgrammar/xgrammar.h" ]]; then
  echo "[c8] fetching xgrammar $XGRAMMAR_VERSION sources (PyPI sdist) into .deps/"
  mkdir -p "$ROOT/.deps"
  tgz="$ROOT/.deps/xgrammar-$XGRAMMAR_VERSION.tar.gz"
  if curl -fsSL --retry 3 -o "$tgz.part" "$XGRAMMAR_URL" &&
     echo "$XGRAMMAR_SHA256  $tgz.part" | sha256sum -c --quiet - &&
     mv "$tgz.part" "$tgz" && rm -rf "$XGRAMMAR_DIR.tmp" && mkdir -p "$XGRAMMAR_DIR.tmp" &&
     tar xzf "$tgz" -C "$XGRAMMAR_DIR.tmp" --strip-components=1 \
       "xgrammar-$XGRAMMAR_VERSION/include" "xgrammar-$XGRAMMAR_VERSION/cpp" \
       "xgrammar-$XGRAMMAR_VERSION/3rdparty/picojson" "xgrammar-$XGRAMMAR_VERSION/3rdparty/dlpack" \
       "xgrammar-$XGRAMMAR_VERSION/LICENSE" &&
     [[ -f "$XGRAMMAR_DIR.tmp/include/xgrammar/xgrammar.h" ]]; then
    rm -rf "$XGRAMMAR_DIR"
    mv "$XGRAMMAR_DIR.tmp" "$XGRAMMAR_DIR"
  else
    rm -rf "$XGRAMMAR_DIR.tmp" "$tgz.part"
    echo "[c8] warning: could not fetch xgrammar $XGRAMMAR_VERSION; building without structured output" >&2
  fi
fi
