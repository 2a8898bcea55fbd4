#!/usr/bin/env bash
# Integration tests of `c8 serve` with the official openai client:
#   tests/integration/run.sh PATH/TO/c8 MODEL_DIR [pytest args...]
# Starts the server on a free port, waits for /health, runs pytest, stops the server with
# SIGTERM (it must drain and exit 0). Exit 0 on success; prints pytest's summary line.
set -uo pipefail
if [[ $# -lt 2 ]]; then
  echo "usage: $0 C8_BINARY MODEL_DIR [pytest args...]" >&2
  exit 2
fi
C8_BIN=$(realpath "$1")
MODEL_DIR=$(realpath "$2")
shift 2
HERE=$(cd "$(dirname "$0")" && pwd)
if [[ ! -d "$MODEL_DIR" ]]; then
  echo "run.sh: model dir $MODEL_DIR not found: SKIPPED" >&2
  exit 0
fi
python3 -c "import openai, pytest" 2>/dev/null || {
  echo "run.sh: missing python packages: pip install -r $HERE/requirements.txt" >&2
  exit 1
}
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
LOG=$(mktemp /tmp/c8-serve-XXXXXX.log)
export C8_BASE_URL="http://127.0.0.1:$PORT"
export C8_TEST_API_KEY="c8-test-key"
export C8_TEST_MODEL="c8-test-model"
export C8_TEST_MAX_MODEL_LEN=1024
export C8_TEST_MAX_BODY=1048576
"$C8_BIN" serve "$MODEL_DIR" --host 127.0.0.1 --port "$PORT" --api-key "$C8_TEST_API_KEY" \
  --served-model-name "$C8_TEST_MODEL" --max-model-len "$C8_TEST_MAX_MODEL_LEN" \
  --kv-cache-memory 0.25 --max-num-seqs 64 --max-body-bytes "$C8_TEST_MAX_BODY" \
  --shutdown-timeout 2 --enable-auto-tool-choice --tool-call-parser hermes -q >"$LOG" 2>&1 &
PID=$!
cleanup() { kill -9 "$PID" 2>/dev/null; }
trap cleanup EXIT
for _ in $(seq 1 240); do
  if curl -sf "$C8_BASE_URL/health" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$PID" 2>/dev/null; then
    echo "run.sh: c8 serve exited early:" >&2
    cat "$LOG" >&2
    exit 1
  fi
  sleep 0.25
done
if ! curl -sf "$C8_BASE_URL/health" >/dev/null 2>&1; then
  echo "run.sh: c8 serve did not become healthy:" >&2
  cat "$LOG" >&2
  exit 1
fi
cd "$HERE"
python3 -m pytest -q -p no:cacheprovider "$@" test_server.py test_structured.py
RC=$?
# Graceful shutdown must exit 0.
kill -TERM "$PID"
SRV_RC=0
for _ in $(seq 1 100); do
  kill -0 "$PID" 2>/dev/null || break
  sleep 0.1
done
if kill -0 "$PID" 2>/dev/null; then
  echo "run.sh: c8 serve did not exit within 10 s of SIGTERM" >&2
  SRV_RC=1
else
  wait "$PID"
  SRV_RC=$?
  [[ $SRV_RC -ne 0 ]] && echo "run.sh: c8 serve exited with $SRV_RC after SIGTERM" >&2
fi
if [[ $RC -ne 0 || $SRV_RC -ne 0 ]]; then
  echo "--- server log ($LOG) ---" >&2
  tail -50 "$LOG" >&2
  exit 1
fi
rm -f "$LOG"
exit 0
