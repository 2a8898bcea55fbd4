#!/usr/bin/env bash
# The main job: installs dependencies, builds, fetches + converts SmolLM2-135M-Instruct, and
# starts c8 on it (CPU backend here; the GPU when one is present). Extra arguments go to c8.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="$ROOT/build"
"$ROOT/scripts/install_deps.sh"
"$ROOT/scripts/build.sh" "$BUILD"
"$ROOT/scripts/get_model.sh" "$BUILD"
if "$BUILD/c8" serve --help >/dev/null 2>&1; then
  exec "$BUILD/c8" serve "$ROOT/models/smollm2-135m-instruct" "$@"
fi
exec "$BUILD/c8" generate --model "$ROOT/models/smollm2-135m-instruct" --chat --interactive "$@"
