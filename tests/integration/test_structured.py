"""Structured output, tool calls, token ids and per-token streaming through the official
openai client (run by run.sh with --enable-auto-tool-choice --tool-call-parser hermes, on
SmolLM2-135M-Instruct, CPU). Grammars make even a tiny model's output valid: every JSON answer
must parse and satisfy its schema.
"""

import json
import re

import openai
import pytest

from test_server import BASE, KEY, MODEL, run_concurrently, wait_all_blocks_free


@pytest.fixture(scope="module")
def client():
    return openai.OpenAI(base_url=BASE + "/v1", api_key=KEY, max_retries=0, timeout=300)


PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 12},
        "age": {"type": "integer", "minimum": 0, "maximum": 120},
        "city": {"enum": ["Paris", "Rome", "Oslo", "Lima"]},
        "student": {"type": "boolean"},
    },
    "required": ["name", "age", "city", "student"],
    "additionalProperties": False,
}


def check_person(text):
    j = json.loads(text)
    assert isinstance(j, dict) and set(j) == {"name", "age", "city", "student"}, text
    assert isinstance(j["name"], str) and len(j["name"]) <= 12, text
    assert isinstance(j["age"], int) and not isinstance(j["age"], bool), text
    assert 0 <= j["age"] <= 120, text
    assert j["city"] in ("Paris", "Rome", "Oslo", "Lima"), text
    assert isinstance(j["student"], bool), text
    return j


def test_json_schema_50_prompts_parse_and_validate(client):
    subjects = ["a doctor", "a child", "my aunt", "a sailor", "a painter", "the mayor",
                "a chef", "a pilot", "a poet", "a farmer"]
    prompts = [f"Describe {subjects[i % 10]} (person {i}) as JSON." for i in range(50)]
    results = [None] * 50

    def worker(i):
        r = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": prompts[i]}],
            max_tokens=120, temperature=0.9 if i % 2 else 0.0, seed=i,
            response_format={"type": "json_schema",
                             "json_schema": {"name": "person", "schema": PERSON}})
        results[i] = (r.choices[0].message.content, r.choices[0].finish_reason)

    errors = run_concurrently(50, worker, timeout=300)
    assert not errors, errors
    for i, r in enumerate(results):
        assert r is not None, i
        assert r[1] == "stop", (i, r)
        check_person(r[0])
    wait_all_blocks_free(10.0)


def test_json_object_choice_regex_grammar(client):
    r = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Give me a JSON object."}],
        max_tokens=200, temperature=0.0, response_format={"type": "json_object"})
    if r.choices[0].finish_reason == "stop":
        assert isinstance(json.loads(r.choices[0].message.content), dict)
    else:  # an unbounded object may run to max_tokens: still a JSON object's prefix
        assert r.choices[0].message.content.startswith("{")
    c = client.completions.create(model=MODEL, prompt="Is the sky blue? Answer:", max_tokens=10,
                                  temperature=0.7, seed=1,
                                  extra_body={"guided_choice": ["yes", "no", "not sure"]})
    assert c.choices[0].text in ("yes", "no", "not sure")
    assert c.choices[0].finish_reason == "stop"
    c = client.completions.create(model=MODEL, prompt="A US phone number:", max_tokens=20,
                                  temperature=0.0,
                                  extra_body={"guided_regex": r"\(\d{3}\) \d{3}-\d{4}"})
    assert re.fullmatch(r"\(\d{3}\) \d{3}-\d{4}", c.choices[0].text), c.choices[0].text
    c = client.completions.create(
        model=MODEL, prompt="Add two numbers:", max_tokens=20, temperature=0.0,
        extra_body={"structured_outputs": {"grammar": 'root ::= [1-9] " + " [1-9] " = " [0-9]+'}})
    assert re.fullmatch(r"[1-9] \+ [1-9] = [0-9]+", c.choices[0].text), c.choices[0].text
    # Streamed guided JSON: the chunks join into a valid answer.
    s = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "A person as JSON"}], max_tokens=120,
        temperature=0.0, stream=True, extra_body={"guided_json": PERSON})
    text = "".join(ch.choices[0].delta.content or "" for ch in s if ch.choices)
    check_person(text)


@pytest.mark.parametrize("body,param", [
    ({"response_format": {"type": "structural_tag"}}, "response_format"),
    ({"guided_decoding_backend": "outlines", "guided_regex": "a"}, "guided_decoding_backend"),
    ({"guided_json": "{not json"}, "guided_json"),
    ({"guided_regex": "([0-9]"}, "guided_regex"),
    ({"guided_grammar": "root ::= nothing_defined"}, "guided_grammar"),
    ({"guided_regex": "a", "guided_choice": ["a"]}, "guided_choice"),
    ({"structured_outputs": {"structural_tag": "x"}}, "structured_outputs.structural_tag"),
    ({"guided_choice": ["yes", "no"], "min_tokens": 4}, "min_tokens"),
    ({"tools": [{"type": "function", "function": {"name": "f"}}],
      "tool_choice": {"type": "function", "function": {"name": "g"}}}, "tool_choice"),
])
def test_unsupported_or_bad_fields_are_400s(client, body, param):
    with pytest.raises(openai.BadRequestError) as ei:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}],
                                       max_tokens=4, extra_body=body)
    assert ei.value.body.get("param") == param, ei.value.body


WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather of a city",
    "parameters": {"type": "object",
                   "properties": {"city": {"enum": ["Paris", "Rome"]},
                                  "unit": {"enum": ["c", "f"]}},
                   "required": ["city", "unit"], "additionalProperties": False}}}
TIME = {"type": "function", "function": {
    "name": "get_time", "parameters": {"type": "object", "properties": {},
                                       "additionalProperties": False}}}
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]


def test_tool_choice_named_and_required(client):
    r = client.chat.completions.create(
        model=MODEL, messages=ASK, tools=[WEATHER, TIME], max_tokens=60, temperature=0.0,
        tool_choice={"type": "function", "function": {"name": "get_weather"}})
    m = r.choices[0].message
    assert len(m.tool_calls) == 1
    call = m.tool_calls[0]
    assert call.type == "function" and call.function.name == "get_weather"
    assert call.id.startswith("chatcmpl-tool-")
    args = json.loads(call.function.arguments)
    assert args["city"] in ("Paris", "Rome") and args["unit"] in ("c", "f")

    r = client.chat.completions.create(model=MODEL, messages=ASK, tools=[WEATHER, TIME],
                                       max_tokens=120, temperature=0.8, seed=3,
                                       tool_choice="required")
    assert r.choices[0].finish_reason == "tool_calls"
    calls = r.choices[0].message.tool_calls
    assert len(calls) >= 1
    for c in calls:
        assert c.function.name in ("get_weather", "get_time")
        assert isinstance(json.loads(c.function.arguments), dict)

    # Streaming: the deltas add up to the same kind of call.
    for choice in ({"type": "function", "function": {"name": "get_weather"}}, "required"):
        s = client.chat.completions.create(model=MODEL, messages=ASK, tools=[WEATHER, TIME],
                                           max_tokens=120, temperature=0.0, stream=True,
                                           tool_choice=choice)
        calls, finish = {}, None
        for ch in s:
            for c in ch.choices:
                finish = c.finish_reason or finish
                for t in c.delta.tool_calls or []:
                    e = calls.setdefault(t.index, {"id": None, "name": None, "args": ""})
                    if t.id:
                        assert e["id"] is None
                        e["id"] = t.id
                    if t.function.name:
                        e["name"] = t.function.name
                    e["args"] += t.function.arguments or ""
        assert calls, choice
        for e in calls.values():
            assert e["id"].startswith("chatcmpl-tool-") and e["name"], e
            assert isinstance(json.loads(e["args"]), dict), e
        assert finish == ("tool_calls" if choice == "required" else "stop")


# tool_choice auto: the model's own <tool_call> output is parsed. A grammar scripts that
# output so that the tiny model makes a call.
SCRIPTED = ('root ::= "Let me check." "<tool_call>\\n" '
            '"{\\"name\\": \\"get_weather\\", \\"arguments\\": {\\"city\\": \\"Paris\\", '
            '\\"unit\\": \\"c\\"}}" "\\n</tool_call>"')


def test_tool_choice_auto_parses_hermes_calls(client):
    r = client.chat.completions.create(model=MODEL, messages=ASK, tools=[WEATHER], max_tokens=80,
                                       temperature=0.0, extra_body={"guided_grammar": SCRIPTED})
    ch = r.choices[0]
    assert ch.finish_reason == "tool_calls"
    assert ch.message.content == "Let me check."
    assert len(ch.message.tool_calls) == 1
    assert ch.message.tool_calls[0].function.name == "get_weather"
    assert json.loads(ch.message.tool_calls[0].function.arguments) == {"city": "Paris",
                                                                      "unit": "c"}
    s = client.chat.completions.create(model=MODEL, messages=ASK, tools=[WEATHER], max_tokens=80,
                                       temperature=0.0, stream=True,
                                       extra_body={"guided_grammar": SCRIPTED})
    content, args, names, finish = "", "", [], None
    for chunk in s:
        for c in chunk.choices:
            content += c.delta.content or ""
            finish = c.finish_reason or finish
            for t in c.delta.tool_calls or []:
                if t.function.name:
                    names.append(t.function.name)
                args += t.function.arguments or ""
    assert content == "Let me check."
    assert names == ["get_weather"]
    assert json.loads(args) == {"city": "Paris", "unit": "c"}
    assert finish == "tool_calls"
    # No call in the output: plain content, finish_reason stop.
    r = client.chat.completions.create(model=MODEL, messages=ASK, tools=[WEATHER], max_tokens=8,
                                       temperature=0.0,
                                       extra_body={"guided_choice": ["It is sunny."]})
    assert r.choices[0].message.content == "It is sunny."
    assert not r.choices[0].message.tool_calls
    assert r.choices[0].finish_reason == "stop"


def test_return_token_ids(client):
    r = client.completions.create(model=MODEL, prompt="Hello", max_tokens=5, temperature=0.0,
                                  extra_body={"return_token_ids": True, "ignore_eos": True})
    c = r.choices[0].model_extra
    assert len(c["token_ids"]) == 5 and c["prompt_token_ids"]
    r = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}],
                                       max_tokens=5, temperature=0.0,
                                       extra_body={"return_token_ids": True, "ignore_eos": True})
    assert len(r.choices[0].model_extra["token_ids"]) == 5
    assert r.model_extra["prompt_token_ids"]


def test_one_chunk_per_token_under_32_streams(client):
    """vLLM sends each generated token as its own chunk: count the tokens of every chunk."""
    n_clients, max_tokens = 32, 12
    results = [None] * n_clients

    def worker(i):
        s = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": f"Tell me story {i}"}],
            max_tokens=max_tokens, temperature=0.8, seed=i, stream=True,
            extra_body={"ignore_eos": True, "return_token_ids": True})
        per_chunk = []
        for ch in s:
            for c in ch.choices:
                ids = (c.model_extra or {}).get("token_ids")
                if ids is not None and (ids or c.finish_reason is None):
                    per_chunk.append(len(ids))
        results[i] = per_chunk

    errors = run_concurrently(n_clients, worker, timeout=300)
    assert not errors, errors
    for i, per_chunk in enumerate(results):
        assert per_chunk is not None, i
        assert sum(per_chunk) == max_tokens, (i, per_chunk)
        assert all(n == 1 for n in per_chunk), (i, per_chunk)
    wait_all_blocks_free(10.0)
