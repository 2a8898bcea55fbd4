"""`c8 serve` flags that change responses, each on its own server (CPU, SmolLM2):
--return-tokens-as-token-ids, and tool_choice "auto" without --enable-auto-tool-choice.

Run by ctest (serve_flags_integration) with C8_BIN and C8_SMOLLM2_DIR set.
"""

import os

import openai
import pytest

from test_tensor_parallel import SMOL, start_server, stop_server

pytestmark = pytest.mark.skipif(not os.path.exists(os.path.join(SMOL, "config.json")),
                                reason="SmolLM2 not converted")


def test_tokens_as_token_ids_and_auto_tool_choice_needs_the_flags():
    proc, log, client = start_server(
        SMOL, ["--max-model-len", "512", "--kv-cache-memory", "0.1", "--return-tokens-as-token-ids"])
    try:
        c = client.completions.create(model=SMOL, prompt="Hello", max_tokens=4,
                                        temperature=0, logprobs=2,
                                        extra_body={"return_token_ids": True,
                                                    "ignore_eos": True})
        ids = c.choices[0].model_extra["token_ids"]
        assert c.choices[0].logprobs.tokens == [f"token_id:{i}" for i in ids]
        for top in c.choices[0].logprobs.top_logprobs:
            assert all(k.startswith("token_id:") for k in top)
        r = client.chat.completions.create(
            model=SMOL, messages=[{"role": "user", "content": "Hi"}], max_tokens=3,
            temperature=0, logprobs=True, top_logprobs=1,
            extra_body={"return_token_ids": True, "ignore_eos": True})
        ids = r.choices[0].model_extra["token_ids"]
        assert [t.token for t in r.choices[0].logprobs.content] == [f"token_id:{i}" for i in ids]
        # tools without tool_choice means "auto" (vLLM), which needs --enable-auto-tool-choice.
        tools = [{"type": "function", "function": {"name": "f"}}]
        with pytest.raises(openai.BadRequestError) as ei:
            client.chat.completions.create(
                model=SMOL, messages=[{"role": "user", "content": "Hi"}], tools=tools)
        assert ei.value.body.get("param") == "tool_choice"
        assert "--enable-auto-tool-choice" in ei.value.body.get("message", "")
        # "none" only renders the tools; the answer is plain text.
        r = client.chat.completions.create(
            model=SMOL, messages=[{"role": "user", "content": "Hi"}], tools=tools,
            tool_choice="none", max_tokens=4)
        assert r.choices[0].message.tool_calls is None or r.choices[0].message.tool_calls == []
    finally:
        stop_server(proc, log)
