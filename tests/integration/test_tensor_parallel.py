"""Tensor parallelism end to end on the CPU backend: `c8 generate` and `c8 serve` with
-tp 2 / -tp 3 give the same greedy text as -tp 1 on SmolLM2, with a bf16 and a C8 (int8,
calibrated) KV cache; a size that does not split is a clear error.

Run by ctest (tensor_parallel_integration) with C8_BIN and C8_SMOLLM2_DIR set; the servers are
started and stopped here, on loopback ports.
"""

import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

import openai
import pytest

C8 = os.environ.get("C8_BIN", "build/c8")
SMOL = os.environ.get("C8_SMOLLM2_DIR", "models/smollm2-135m-instruct")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROMPTS = ["Once upon a time", "def fib(n):", "The three primary colors are"]
COMMON = ["--max-model-len", "512", "--kv-cache-memory", "0.1", "--threads", "2"]

pytestmark = pytest.mark.skipif(not os.path.exists(os.path.join(SMOL, "config.json")),
                                reason="SmolLM2 not converted")


def generate(model, tp, kv):
    args = [C8, "generate", "-m", model, "-q", "--temperature", "0", "--max-tokens", "24",
            "--kv-cache-dtype", kv, "-tp", str(tp)] + COMMON
    for p in PROMPTS:
        args += ["-p", p]
    r = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.fixture(scope="module")
def c8_model():
    """SmolLM2 with calibrated C8 scales (c8 calibrate), made once."""
    out = os.path.join(tempfile.mkdtemp(prefix="c8-tp-"), "smollm2-c8")
    r = subprocess.run([C8, "calibrate", "-m", SMOL, "--data",
                        os.path.join(ROOT, "data/text/gpl-3.txt"), "--max-tokens", "1024",
                        "--out", out], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return out


@pytest.mark.parametrize("kv", ["bf16", "int8"])
def test_generate_same_text_at_every_tp(kv, c8_model):
    model = c8_model if kv == "int8" else SMOL
    one = generate(model, 1, kv)
    assert one.count("=== [") == len(PROMPTS)
    for tp in (2, 3):
        assert generate(model, tp, kv) == one, f"-tp {tp} differs from -tp 1 (kv {kv})"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_server(model, args):
    """Starts `c8 serve model args...` on a free port and waits for /health: (proc, log, client)."""
    port = free_port()
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen([C8, "serve", model, "--port", str(port), "-q"] + args, stdout=log,
                            stderr=log)
    base = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            urllib.request.urlopen(base + "/health", timeout=1)
            break
        except Exception:
            assert proc.poll() is None, "c8 serve exited early"
            time.sleep(0.25)
    return proc, log, openai.OpenAI(base_url=base + "/v1", api_key="none", max_retries=0,
                                    timeout=120)


def stop_server(proc, log):
    """SIGTERM; the server must drain and exit 0."""
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = -9
    log.seek(0)
    assert rc == 0, log.read().decode(errors="replace")[-2000:]


def serve_completions(model, tp, kv):
    proc, log, client = start_server(model, ["-tp", str(tp), "--kv-cache-dtype", kv] + COMMON)
    try:
        texts = []
        for p in PROMPTS:
            r = client.completions.create(model=model, prompt=p, max_tokens=24, temperature=0)
            texts.append(r.choices[0].text)
        # Streamed, several at once (continuous batching across the ranks).
        streams = [client.completions.create(model=model, prompt=p, max_tokens=24,
                                             temperature=0, stream=True) for p in PROMPTS]
        streamed = ["".join(c.choices[0].text for c in s if c.choices) for s in streams]
        assert streamed == texts
        return texts
    finally:
        stop_server(proc, log)


@pytest.mark.parametrize("kv", ["bf16", "int8"])
def test_serve_same_text_as_one_rank(kv, c8_model):
    model = c8_model if kv == "int8" else SMOL
    one = serve_completions(model, 1, kv)
    assert all(t for t in one)
    assert serve_completions(model, 3, kv) == one
    # and what `c8 generate` prints for the same prompts
    printed = generate(model, 1, kv)
    for p, t in zip(PROMPTS, one):
        assert p + t in printed


def test_bad_size_is_a_clear_error():
    r = subprocess.run([C8, "generate", "-m", SMOL, "-p", "hi", "-tp", "4"] + COMMON,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert "--tensor-parallel-size 4" in r.stderr and "sizes that work: 1, 2, 3" in r.stderr, r.stderr
