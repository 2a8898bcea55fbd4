#!/usr/bin/env bash
# The test command: installs dependencies, builds, fetches + converts the real model, and
# runs every test (ctest).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="$ROOT/build"
"$ROOT/scripts/install_deps.sh"
"$ROOT/scripts/build.sh" "$BUILD"
"$ROOT/scripts/get_model.sh" "$BUILD"
cd "$BUILD"
ctest --output-on-failure -j2 --timeout 900
