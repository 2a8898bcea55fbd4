"""Integration tests of `c8 serve` through the official openai client.

Run by run.sh, which starts the server and exports C8_BASE_URL, C8_TEST_API_KEY,
C8_TEST_MODEL, C8_TEST_MAX_MODEL_LEN and C8_TEST_MAX_BODY. Small max_tokens everywhere: the
whole suite must stay fast on a 2-core CPU.
"""

import json
import os
import re
import threading
import time

import http.client
import urllib.parse
import openai
import pytest

BASE = os.environ.get("C8_BASE_URL", "http://127.0.0.1:8000")
KEY = os.environ.get("C8_TEST_API_KEY", "c8-test-key")
MODEL = os.environ.get("C8_TEST_MODEL", "c8-test-model")
MAX_LEN = int(os.environ.get("C8_TEST_MAX_MODEL_LEN", "1024"))
MAX_BODY = int(os.environ.get("C8_TEST_MAX_BODY", str(1 << 20)))

PROMPT = "The capital of France is"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def client():
    return openai.OpenAI(base_url=BASE + "/v1", api_key=KEY, max_retries=0, timeout=120)


class RawResponse:
    def __init__(self, status, body):
        self.status_code = status
        self.content = body
        self.text = body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.text)


def http_request(method, path, body=None, headers=None, timeout=60):
    """One HTTP request with the standard library (raw bytes in, status + bytes out)."""
    u = urllib.parse.urlsplit(BASE)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return RawResponse(r.status, r.read())
    finally:
        conn.close()


def metrics():
    """Samples of /metrics: {name: value} (first sample of each name) and the raw text."""
    text = http_request("GET", "/metrics").text
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$", line)
        assert m, f"bad exposition line: {line!r}"
        out.setdefault(m.group(1), float(m.group(3)))
    return out, text


def wait_all_blocks_free(timeout=10.0):
    deadline = time.time() + timeout
    while True:
        m, _ = metrics()
        if (m["c8:kv_cache_free_blocks"] == m["c8:kv_cache_total_blocks"]
                and m["vllm:num_requests_running"] == 0 and m["vllm:num_requests_waiting"] == 0):
            return m
        if time.time() > deadline:
            pytest.fail(f"KV blocks not all returned: {m}")
        time.sleep(0.1)


def greedy_completion(client, prompt=PROMPT, max_tokens=8, **extra):
    return client.completions.create(model=MODEL, prompt=prompt, max_tokens=max_tokens,
                                     temperature=0, extra_body={"ignore_eos": True, **extra})


# --- basics -------------------------------------------------------------------------------

def test_health_version_models(client):
    assert http_request("GET", "/health").status_code == 200
    v = http_request("GET", "/version").json()
    assert isinstance(v["version"], str) and v["version"]
    models = client.models.list()
    assert [m.id for m in models.data] == [MODEL]
    assert models.data[0].owned_by == "c8"
    assert models.data[0].model_extra["max_model_len"] == MAX_LEN


def test_completion(client):
    r = greedy_completion(client, max_tokens=8)
    assert r.object == "text_completion"
    assert len(r.choices) == 1
    c = r.choices[0]
    assert c.index == 0 and c.finish_reason == "length" and c.text
    assert r.usage.completion_tokens == 8
    assert r.usage.prompt_tokens > 0
    assert r.usage.total_tokens == r.usage.prompt_tokens + 8
    # Greedy is deterministic.
    assert greedy_completion(client, max_tokens=8).choices[0].text == c.text


def test_completion_stream_matches_non_stream(client):
    ref = greedy_completion(client, max_tokens=10, logprobs=0)
    stream = client.completions.create(
        model=MODEL, prompt=PROMPT, max_tokens=10, temperature=0, logprobs=0, stream=True,
        stream_options={"include_usage": True}, extra_body={"ignore_eos": True})
    text, ntok, finish, usage = "", 0, None, None
    for ch in stream:
        if ch.usage is not None:
            assert ch.choices == []
            usage = ch.usage
            continue
        assert len(ch.choices) == 1
        text += ch.choices[0].text
        ntok += len(ch.choices[0].logprobs.tokens)
        if ch.choices[0].finish_reason:
            finish = ch.choices[0].finish_reason
    assert text == ref.choices[0].text
    assert finish == "length"
    assert usage is not None and usage.completion_tokens == ntok == 10
    assert usage.prompt_tokens == ref.usage.prompt_tokens


def test_chat(client):
    r = client.chat.completions.create(
        model=MODEL, messages=[{"role": "system", "content": "You are brief."},
                               {"role": "user", "content": "Say hello."}],
        max_tokens=8, temperature=0, extra_body={"ignore_eos": True})
    assert r.object == "chat.completion"
    m = r.choices[0].message
    assert m.role == "assistant" and m.content
    assert r.usage.completion_tokens == 8
    assert r.choices[0].finish_reason == "length"
    # Content as a list of text parts (the openai-chat bench client) and
    # max_completion_tokens give the same answer.
    r2 = client.chat.completions.create(
        model=MODEL, messages=[{"role": "system", "content": [{"type": "text", "text": "You are brief."}]},
                               {"role": "user", "content": [{"type": "text", "text": "Say hello."}]}],
        max_completion_tokens=8, temperature=0, extra_body={"ignore_eos": True})
    assert r2.choices[0].message.content == m.content


def test_chat_stream(client):
    ref = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Count to five."}], max_tokens=12,
        temperature=0, extra_body={"ignore_eos": True})
    stream = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Count to five."}], max_tokens=12,
        temperature=0, stream=True, stream_options={"include_usage": True}, logprobs=True,
        extra_body={"ignore_eos": True})
    text, roles, ntok, usage, finish = "", [], 0, None, None
    for ch in stream:
        assert ch.object == "chat.completion.chunk"
        if ch.usage is not None:
            usage = ch.usage
            continue
        d = ch.choices[0].delta
        if d.role:
            roles.append(d.role)
        text += d.content or ""
        if ch.choices[0].logprobs:
            ntok += len(ch.choices[0].logprobs.content)
        finish = ch.choices[0].finish_reason or finish
    assert roles == ["assistant"]
    assert text == ref.choices[0].message.content
    assert usage.completion_tokens == ntok == 12
    assert finish == "length"


def test_chat_template_kwargs_passthrough(client):
    r = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=2,
        extra_body={"chat_template_kwargs": {"enable_thinking": False}})
    assert r.choices[0].message.content is not None


def test_stop_string(client):
    ref = greedy_completion(client, max_tokens=12, logprobs=0)
    toks = ref.choices[0].logprobs.tokens
    # A stop string that first appears at the start of some later token.
    full = ref.choices[0].text
    for i in range(2, len(toks)):
        word = toks[i]
        if word.strip() and full.find(word) == sum(len(t) for t in toks[:i]):
            break
    else:
        pytest.skip("no usable stop word in the greedy output")
    r = greedy_completion(client, max_tokens=12, stop=[word])
    c = r.choices[0]
    assert c.finish_reason == "stop"
    assert c.model_extra["stop_reason"] == word
    assert c.text == full[: full.find(word)]
    # include_stop_str_in_output keeps it.
    r2 = greedy_completion(client, max_tokens=12, stop=word, include_stop_str_in_output=True)
    assert r2.choices[0].text == full[: full.find(word) + len(word)]


def test_stop_token_ids_and_min_tokens(client):
    r = greedy_completion(client, max_tokens=6, min_tokens=6, stop_token_ids=[0])
    assert r.usage.completion_tokens == 6


def test_seed_reproducible(client):
    def run(seed):
        r = client.completions.create(model=MODEL, prompt="Once upon a time", max_tokens=12,
                                      temperature=1.0, seed=seed, extra_body={"ignore_eos": True})
        return r.choices[0].text

    a, b = run(1234), run(1234)
    assert a == b
    others = {run(s) for s in (1, 2, 3)}
    assert len(others | {a}) > 1


def test_n_fan_out(client):
    r = client.completions.create(model=MODEL, prompt="Once upon a time", max_tokens=6,
                                  temperature=1.0, seed=7, n=3, extra_body={"ignore_eos": True})
    assert sorted(c.index for c in r.choices) == [0, 1, 2]
    assert r.usage.completion_tokens == 18
    assert len({c.text for c in r.choices}) > 1  # distinct random streams
    # Same seed, same n: the same three texts.
    r2 = client.completions.create(model=MODEL, prompt="Once upon a time", max_tokens=6,
                                   temperature=1.0, seed=7, n=3, extra_body={"ignore_eos": True})
    assert [c.text for c in sorted(r.choices, key=lambda c: c.index)] == \
        [c.text for c in sorted(r2.choices, key=lambda c: c.index)]
    # Batch prompts x n: index = prompt * n + sibling; prompt tokens counted once per prompt.
    b = client.completions.create(model=MODEL, prompt=["Hello", "The sky is"], max_tokens=3,
                                  temperature=0, n=2, extra_body={"ignore_eos": True})
    by = {c.index: c.text for c in b.choices}
    assert sorted(by) == [0, 1, 2, 3]
    assert by[0] == by[1] and by[2] == by[3]  # greedy siblings agree
    assert b.usage.completion_tokens == 12
    # Chat n=2 streamed.
    stream = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=4, n=2,
        temperature=1.0, seed=3, stream=True, extra_body={"ignore_eos": True})
    seen = {}
    for ch in stream:
        for c in ch.choices:
            seen.setdefault(c.index, "")
            seen[c.index] += c.delta.content or ""
    assert sorted(seen) == [0, 1]


def test_token_prompts(client):
    ref = greedy_completion(client, max_tokens=4, logprobs=0)
    ids = [504, 3575, 282, 4649, 314]  # any in-vocabulary ids
    a = client.completions.create(model=MODEL, prompt=ids, max_tokens=4, temperature=0,
                                  extra_body={"ignore_eos": True})
    b = client.completions.create(model=MODEL, prompt=[ids, ids[:3]], max_tokens=4, temperature=0,
                                  extra_body={"ignore_eos": True})
    assert a.usage.prompt_tokens == len(ids)
    assert b.usage.prompt_tokens == len(ids) + 3
    assert {c.index for c in b.choices} == {0, 1}
    assert [c.text for c in b.choices if c.index == 0] == [a.choices[0].text]
    assert ref.usage.completion_tokens == 4


def test_completion_logprobs(client):
    r = greedy_completion(client, max_tokens=6, logprobs=3)
    lp = r.choices[0].logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == \
        len(lp.text_offset) == r.usage.completion_tokens == 6
    assert "".join(lp.tokens) == r.choices[0].text
    assert lp.text_offset[0] == 0
    for tok, val, top in zip(lp.tokens, lp.token_logprobs, lp.top_logprobs):
        assert val <= 0
        assert 3 <= len(top) <= 4
        assert tok in top
        assert abs(max(top.values()) - val) < 1e-4  # greedy: the sampled token is the best


def test_chat_logprobs(client):
    r = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=5, temperature=0,
        logprobs=True, top_logprobs=2, extra_body={"ignore_eos": True})
    content = r.choices[0].logprobs.content
    assert len(content) == r.usage.completion_tokens == 5
    for e in content:
        assert e.logprob <= 0
        assert isinstance(e.bytes, list)
        assert len(e.top_logprobs) == 2
        assert e.top_logprobs[0].logprob >= e.top_logprobs[1].logprob
        assert abs(e.top_logprobs[0].logprob - e.logprob) < 1e-4


def test_echo(client):
    r = client.completions.create(model=MODEL, prompt=PROMPT, max_tokens=3, temperature=0,
                                  echo=True)
    assert r.choices[0].text.startswith(PROMPT)


# --- robustness ---------------------------------------------------------------------------

def test_client_abort_frees_blocks(client):
    stream = client.completions.create(model=MODEL, prompt=PROMPT, max_tokens=400, temperature=0,
                                       stream=True, extra_body={"ignore_eos": True})
    n = 0
    for _ in stream:
        n += 1
        if n == 3:
            break
    stream.close()
    m = wait_all_blocks_free(10.0)
    assert m["c8:kv_cache_total_blocks"] > 0
    # The server still serves.
    assert greedy_completion(client, max_tokens=2).usage.completion_tokens == 2


def run_concurrently(n, worker, timeout=120):
    """Runs worker(i) for i in range(n) on n threads; returns the exceptions they raised."""
    errors = []

    def wrapped(i):
        try:
            worker(i)
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    threads = [threading.Thread(target=wrapped, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    return errors


def test_32_concurrent_streams(client):
    n_clients, max_tokens = 32, 8
    results = [None] * n_clients

    def worker(i):
        stream = client.completions.create(
            model=MODEL, prompt=f"Story number {i}: once upon a time", max_tokens=max_tokens,
            temperature=0.8, seed=i, logprobs=0, stream=True,
            stream_options={"include_usage": True}, extra_body={"ignore_eos": True})
        ntok, usage, finish, text = 0, None, None, ""
        for ch in stream:
            if ch.usage is not None:
                usage = ch.usage
            for c in ch.choices:
                ntok += len(c.logprobs.tokens)
                text += c.text
                finish = c.finish_reason or finish
        results[i] = (ntok, usage.completion_tokens if usage else None, finish, text)

    errors = run_concurrently(n_clients, worker)
    assert not errors, errors
    for i, r in enumerate(results):
        assert r is not None, f"stream {i} did not finish"
        assert r[0] == max_tokens and r[1] == max_tokens and r[2] == "length", (i, r)
    # Seeded requests are reproducible whatever the batch: stream 5 alone gives the same text.
    alone = client.completions.create(model=MODEL, prompt="Story number 5: once upon a time",
                                      max_tokens=max_tokens, temperature=0.8, seed=5,
                                      extra_body={"ignore_eos": True})
    assert alone.choices[0].text == results[5][3]
    wait_all_blocks_free(10.0)


def _raw(path, body=None, method="POST", headers=None, raw=None):
    h = dict(AUTH)
    h.update(headers or {})
    h = {k: v for k, v in h.items() if v}
    if raw is None and body is not None:
        raw = json.dumps(body).encode()
        h.setdefault("Content-Type", "application/json")
    return http_request(method, path, body=raw, headers=h)


CMPL, CHAT = "/v1/completions", "/v1/chat/completions"
OK_MSGS = [{"role": "user", "content": "hi"}]
LONG_PROMPT = "hello " * (MAX_LEN + 50)
DEEP = ("[" * 100000) + ("]" * 100000)

HOSTILE = [
    ("bad_json", CMPL, dict(raw=b"{not json"), 400),
    ("truncated_json", CMPL, dict(raw=b'{"prompt": "hi", "max_tok'), 400),
    ("empty_body", CMPL, dict(raw=b""), 400),
    ("not_an_object", CMPL, dict(raw=b"[1, 2, 3]"), 400),
    ("prompt_missing", CMPL, dict(body={"max_tokens": 2}), 400),
    ("prompt_wrong_type", CMPL, dict(body={"prompt": 5}), 400),
    ("prompt_empty_list", CMPL, dict(body={"prompt": []}), 400),
    ("prompt_mixed_list", CMPL, dict(body={"prompt": ["a", 1]}), 400),
    ("max_tokens_string", CMPL, dict(body={"prompt": "hi", "max_tokens": "ten"}), 400),
    ("max_tokens_negative", CMPL, dict(body={"prompt": "hi", "max_tokens": -5}), 400),
    ("max_tokens_beyond_context", CMPL, dict(body={"prompt": "hi", "max_tokens": MAX_LEN * 10}), 400),
    ("max_tokens_overflow", CMPL, dict(body={"prompt": "hi", "max_tokens": 2 ** 40}), 400),
    ("temperature_negative", CMPL, dict(body={"prompt": "hi", "temperature": -1}), 400),
    ("temperature_string", CMPL, dict(body={"prompt": "hi", "temperature": "hot"}), 400),
    ("top_p_zero", CMPL, dict(body={"prompt": "hi", "top_p": 0}), 400),
    ("top_p_two", CMPL, dict(body={"prompt": "hi", "top_p": 2}), 400),
    ("top_k_negative", CMPL, dict(body={"prompt": "hi", "top_k": -5}), 400),
    ("min_p_two", CMPL, dict(body={"prompt": "hi", "min_p": 2}), 400),
    ("repetition_penalty_zero", CMPL, dict(body={"prompt": "hi", "repetition_penalty": 0}), 400),
    ("frequency_penalty_big", CMPL, dict(body={"prompt": "hi", "frequency_penalty": 5}), 400),
    ("presence_penalty_small", CMPL, dict(body={"prompt": "hi", "presence_penalty": -3}), 400),
    ("n_zero", CMPL, dict(body={"prompt": "hi", "n": 0}), 400),
    ("n_string", CMPL, dict(body={"prompt": "hi", "n": "two"}), 400),
    ("n_huge", CMPL, dict(body={"prompt": "hi", "n": 100000}), 400),
    ("seed_string", CMPL, dict(body={"prompt": "hi", "seed": "abc"}), 400),
    ("stop_wrong_type", CMPL, dict(body={"prompt": "hi", "stop": 5}), 400),
    ("stop_list_non_string", CMPL, dict(body={"prompt": "hi", "stop": ["a", 3]}), 400),
    ("stop_token_ids_strings", CMPL, dict(body={"prompt": "hi", "stop_token_ids": ["x"]}), 400),
    ("min_tokens_gt_max", CMPL, dict(body={"prompt": "hi", "max_tokens": 2, "min_tokens": 5}), 400),
    ("stream_string", CMPL, dict(body={"prompt": "hi", "stream": "yes"}), 400),
    ("stream_options_not_object", CMPL, dict(body={"prompt": "hi", "stream": True, "stream_options": 1}), 400),
    ("logprobs_huge", CMPL, dict(body={"prompt": "hi", "logprobs": 100}), 400),
    ("echo_with_logprobs", CMPL, dict(body={"prompt": "hi", "echo": True, "logprobs": 1}), 400),
    ("prompt_too_long", CMPL, dict(body={"prompt": LONG_PROMPT, "max_tokens": 1}), 400),
    ("token_ids_out_of_vocab", CMPL, dict(body={"prompt": [1, 999999999], "max_tokens": 1}), 400),
    ("token_ids_negative", CMPL, dict(body={"prompt": [1, -1], "max_tokens": 1}), 400),
    ("invalid_utf8", CMPL, dict(raw=b'{"prompt": "\xff\xfe\xfd", "max_tokens": 1}'), 400),
    ("lone_surrogate", CMPL, dict(raw=b'{"prompt": "\\udc80", "max_tokens": 1}'), 400),
    ("deeply_nested", CMPL, dict(raw=DEEP.encode()), 400),
    ("deeply_nested_field", CMPL, dict(raw=b'{"prompt": ' + DEEP.encode() + b"}"), 400),
    ("unknown_model", CMPL, dict(body={"prompt": "hi", "model": "gpt-17"}), 404),
    ("messages_missing", CHAT, dict(body={"max_tokens": 2}), 400),
    ("messages_empty", CHAT, dict(body={"messages": []}), 400),
    ("messages_not_list", CHAT, dict(body={"messages": "hi"}), 400),
    ("message_not_object", CHAT, dict(body={"messages": ["hi"]}), 400),
    ("message_no_role", CHAT, dict(body={"messages": [{"content": "hi"}]}), 400),
    ("unknown_role", CHAT, dict(body={"messages": [{"role": "wizard", "content": "hi"}]}), 400),
    ("content_wrong_type", CHAT, dict(body={"messages": [{"role": "user", "content": 42}]}), 400),
    ("content_image_part", CHAT, dict(body={"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "http://x"}}]}]}), 400),
    ("chat_logprobs_string", CHAT, dict(body={"messages": OK_MSGS, "logprobs": "yes"}), 400),
    ("top_logprobs_without_logprobs", CHAT, dict(body={"messages": OK_MSGS, "top_logprobs": 5}), 400),
    ("top_logprobs_huge", CHAT, dict(body={"messages": OK_MSGS, "logprobs": True, "top_logprobs": 50}), 400),
    ("chat_template_kwargs_not_object", CHAT, dict(body={"messages": OK_MSGS, "chat_template_kwargs": 3}), 400),
    ("chat_max_completion_tokens_negative", CHAT, dict(body={"messages": OK_MSGS, "max_completion_tokens": -1}), 400),
    ("chat_unknown_model", CHAT, dict(body={"messages": OK_MSGS, "model": "nope"}), 404),
    ("missing_api_key", CMPL, dict(body={"prompt": "hi"}, headers={"Authorization": ""}), 401),
    ("wrong_api_key", CMPL, dict(body={"prompt": "hi"}, headers={"Authorization": "Bearer wrong"}), 401),
    ("models_wrong_api_key", "/v1/models", dict(method="GET", headers={"Authorization": "Bearer x"}), 401),
    ("oversized_body", CMPL, dict(raw=b'{"prompt": "' + b"a" * (MAX_BODY + 1000) + b'"}'), 413),
    ("get_on_post_route", CMPL, dict(method="GET"), 405),
    ("get_on_chat_route", CHAT, dict(method="GET"), 405),
    ("unknown_route", "/v1/nothing-here", dict(body={"prompt": "hi"}), 404),
    ("unknown_route_get", "/v2/models", dict(method="GET"), 404),
]


@pytest.mark.parametrize("name,path,kw,status", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_request(name, path, kw, status):
    r = _raw(path, **kw)
    assert r.status_code == status, (name, r.status_code, r.text[:300])
    body = r.json()
    err = body["error"]
    assert set(err) == {"message", "type", "param", "code"}, err
    assert isinstance(err["message"], str) and err["message"]
    if name == "unknown_model":
        assert err["code"] == "model_not_found"
    if name == "temperature_negative":
        assert err["param"] == "temperature"
    if name == "prompt_too_long":
        assert str(MAX_LEN) in err["message"]


def test_still_serving_after_hostile(client):
    assert len(HOSTILE) >= 25
    r = greedy_completion(client, max_tokens=3)
    assert r.usage.completion_tokens == 3
    m, text = metrics()
    wait_all_blocks_free(10.0)
    for name in ("vllm:num_requests_running", "vllm:num_requests_waiting",
                 "vllm:kv_cache_usage_perc", "vllm:prompt_tokens_total",
                 "vllm:generation_tokens_total", "vllm:prefix_cache_queries_total",
                 "vllm:prefix_cache_hits_total", "vllm:num_preemptions_total",
                 "vllm:time_to_first_token_seconds_count", "vllm:e2e_request_latency_seconds_count",
                 "vllm:inter_token_latency_seconds_count", "c8:kv_cache_free_blocks",
                 "c8:kv_cache_total_blocks"):
        assert name in m, name
    assert f'model_name="{MODEL}"' in text
    assert 'vllm:request_success_total{model_name="%s",finished_reason="length"}' % MODEL in text
    assert m["vllm:generation_tokens_total"] > 0
    assert 0 <= m["vllm:kv_cache_usage_perc"] <= 1
