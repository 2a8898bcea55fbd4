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
