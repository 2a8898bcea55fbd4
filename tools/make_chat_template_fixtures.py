#!/usr/bin/env python3
"""Regenerates tests/data/chat_template/expected.json.

Renders every chat template in tests/data/chat_template/*.jinja (plus a set of
small feature templates defined below) with Python jinja2, set up exactly as
HF transformers' apply_chat_template does it:

  ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                extensions=[AssistantTracker, jinja2.ext.loopcontrols])
  filters["tojson"] = json.dumps(x, ensure_ascii=False, indent=..., separators=..., sort_keys=...)
  globals["raise_exception"] raises TemplateError(message)
  globals["strftime_now"] = datetime.now().strftime(format)
  render(messages=..., tools=None, documents=None, add_generation_prompt=...,
         **special_tokens_map, **kwargs)

(AssistantTracker only adds the {% generation %} tag; here it is a plain
pass-through block, which is what it renders to outside of
return_assistant_tokens_mask.)

The C++ test (tests/tokenizer/chat_template_test.cpp) renders the same cases
and must match byte for byte; cases that raise in Python must fail in C++.

Usage: python3 tools/make_chat_template_fixtures.py
"""

import json
import os
from datetime import datetime

import jinja2
import jinja2.ext
from jinja2.ext import Extension
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "data", "chat_template")


class GenerationTag(Extension):
    """{% generation %}...{% endgeneration %}: renders its body unchanged."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_gen"), [], [], body).set_lineno(lineno)

    def _gen(self, caller):
        return caller()


def make_env():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    def strftime_now(fmt):
        return datetime.now().strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[GenerationTag, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


# name -> (file, bos_token, eos_token). Tokens as in each model's tokenizer_config.json
# (Qwen has bos_token null, so bos_token is left undefined as in transformers).
TEMPLATES = {
    "smollm2": ("smollm2.jinja", "<|im_start|>", "<|im_end|>"),
    "qwen2_instruct": ("qwen2_instruct.jinja", None, "<|im_end|>"),
    "qwen2.5_instruct": ("qwen2.5_instruct.jinja", None, "<|im_end|>"),
    "qwen3": ("qwen3.jinja", None, "<|im_end|>"),
    "qwen3_original": ("qwen3_original.jinja", None, "<|im_end|>"),
    "qwq_32b": ("qwq_32b.jinja", None, "<|im_end|>"),
}

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name, e.g. Zürich"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
    },
}
TIME_TOOL = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "Current time \"now\" in a time zone.",
        "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}},
    },
}


def tc(name, args, wrap=True):
    call = {"name": name, "arguments": args}
    return {"type": "function", "id": "call_" + name, "function": call} if wrap else call


CONVERSATIONS = [
    ("single_user", [{"role": "user", "content": "Hello!"}], {}),
    ("system_user", [{"role": "system", "content": "You are terse."},
                     {"role": "user", "content": "What is 2+2?"}], {}),
    ("multi_turn", [{"role": "user", "content": "Hi"},
                    {"role": "assistant", "content": "Hello! How can I help?"},
                    {"role": "user", "content": "Tell me a joke."},
                    {"role": "assistant", "content": "Why did the chicken cross the road?"},
                    {"role": "user", "content": "Why?"}], {}),
    ("system_multi_turn", [{"role": "system", "content": "Be kind.\nAlways."},
                           {"role": "user", "content": "a"},
                           {"role": "assistant", "content": "b"},
                           {"role": "user", "content": "c"}], {}),
    ("ends_with_assistant", [{"role": "user", "content": "Say hi"},
                             {"role": "assistant", "content": "hi"}], {}),
    ("unicode", [{"role": "system", "content": "Réponds en français 🇫🇷."},
                 {"role": "user", "content": "Ça va? 你好，世界！ Привет 😀 \u2028 tab\there"},
                 {"role": "assistant", "content": "Très bien — merci ✓"}], {}),
    ("empty_content", [{"role": "user", "content": ""},
                       {"role": "assistant", "content": ""},
                       {"role": "user", "content": "   "}], {}),
    ("whitespace_content", [{"role": "user", "content": "\n\nleading and trailing\n\n"},
                            {"role": "assistant", "content": "  spaced  "}], {}),
    ("special_chars", [{"role": "user", "content": "{{ not a tag }} {% neither %} {# nor #} \\n \"q\" 'q'"},
                       {"role": "assistant", "content": "<|im_end|> inside <tool_call>"}], {}),
    ("system_only", [{"role": "system", "content": "Only a system prompt."}], {}),
    ("two_systems", [{"role": "system", "content": "first"},
                     {"role": "user", "content": "u"},
                     {"role": "system", "content": "second"},
                     {"role": "user", "content": "v"}], {}),
    ("think_in_content", [{"role": "user", "content": "Solve x+1=2"},
                          {"role": "assistant", "content": "<think>\nx = 2-1\n</think>\n\nx = 1"},
                          {"role": "user", "content": "And x+2=4?"},
                          {"role": "assistant", "content": "<think>\nsubtract 2\n</think>\n\nx = 2"}], {}),
    ("reasoning_content", [{"role": "user", "content": "Q1"},
                           {"role": "assistant", "content": "A1", "reasoning_content": "R1 thought"},
                           {"role": "user", "content": "Q2"},
                           {"role": "assistant", "content": "A2", "reasoning_content": "\nR2 thought\n"}], {}),
    ("reasoning_none", [{"role": "user", "content": "Q"},
                        {"role": "assistant", "content": "A", "reasoning_content": None}], {}),
    ("tools_no_call", [{"role": "system", "content": "You can call tools."},
                       {"role": "user", "content": "Weather in Zürich?"}],
     {"tools": [WEATHER_TOOL, TIME_TOOL]}),
    ("tools_no_system", [{"role": "user", "content": "What time is it in Tokyo?"}],
     {"tools": [TIME_TOOL]}),
    ("tool_call_roundtrip", [
        {"role": "user", "content": "Weather in Paris and Berlin?"},
        {"role": "assistant", "content": "",
         "tool_calls": [tc("get_weather", {"city": "Paris", "unit": "celsius"}),
                        tc("get_weather", {"city": "Berlin"})]},
        {"role": "tool", "name": "get_weather", "content": "{\"temp\": 21.5}"},
        {"role": "tool", "name": "get_weather", "content": "{\"temp\": 18}"},
        {"role": "assistant", "content": "Paris 21.5°C, Berlin 18°C."},
        {"role": "user", "content": "Thanks"}], {"tools": [WEATHER_TOOL]}),
    ("tool_call_with_content", [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "time?"},
        {"role": "assistant", "content": "Let me check.",
         "tool_calls": [tc("get_time", {"tz": "Asia/Tokyo"}, wrap=False)]},
        {"role": "tool", "content": "12:00"}], {"tools": [TIME_TOOL]}),
    ("tool_call_string_args", [
        {"role": "user", "content": "weather"},
        {"role": "assistant", "content": None,
         "tool_calls": [tc("get_weather", "{\"city\": \"Oslo\"}")]},
        {"role": "tool", "content": "cold"}], {"tools": [WEATHER_TOOL]}),
    ("tool_first_message", [{"role": "tool", "content": "orphan result"},
                            {"role": "user", "content": "ok"}], {}),
    ("tool_response_user", [{"role": "user", "content": "real question"},
                            {"role": "assistant", "content": "<think>\nhmm\n</think>\n\ncalling",
                             "tool_calls": [tc("get_time", {})]},
                            {"role": "user", "content": "<tool_response>\n10:00\n</tool_response>"},
                            {"role": "assistant", "content": "<think>\nnow answer\n</think>\n\nIt is 10."}],
     {}),
    ("missing_content", [{"role": "user"}, {"role": "assistant", "content": "x"}], {}),
    ("none_content", [{"role": "user", "content": "q"}, {"role": "assistant", "content": None}], {}),
    ("content_parts", [{"role": "user", "content": [{"type": "text", "text": "part one"},
                                                     {"type": "text", "text": "part two"}]}], {}),
    ("numeric_content", [{"role": "user", "content": 42}], {}),
    ("empty_messages", [], {}),
    ("extra_fields", [{"role": "user", "content": "hi", "name": "bob", "meta": {"k": [1, 2.5, None, True]}}],
     {}),
]

# Small templates that exercise the Jinja features the interpreter supports,
# each rendered with the listed context (no messages needed).
FEATURES = [
    ("loop_vars", "{% for x in items %}{{ loop.index }}/{{ loop.length }} {{ loop.index0 }} {{ loop.revindex }} "
     "{{ loop.revindex0 }} {{ loop.first }} {{ loop.last }} {{ x }}\n{% endfor %}", {"items": ["a", "b", "c"]}),
    ("loop_filter_else", "{% for x in items if x > 1 %}{{ x }}{{ ',' if not loop.last }}{% else %}none{% endfor %}|"
     "{% for x in [] %}{{ x }}{% else %}empty{% endfor %}", {"items": [1, 2, 3, 4]}),
    ("nested_loops", "{% for a in [1, 2] %}{% for b in 'xy' %}{{ loop.index }}{{ a }}{{ b }} {% endfor %}"
     "{{ loop.index }};{% endfor %}", {}),
    ("loop_controls", "{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i > 5 %}{% break %}"
     "{% endif %}{{ i }}{% endfor %}", {}),
    ("loop_cycle_prev", "{% for i in range(3) %}{{ loop.cycle('a', 'b') }}{{ loop.previtem }}{{ loop.nextitem }}"
     "{% endfor %}", {}),
    ("scoping", "{% set x = 'outer' %}{% for i in [1, 2] %}{% if i == 1 %}{% set x = 'inner' %}{% endif %}"
     "[{{ x }}]{% endfor %}{{ x }}{% if true %}{% set y = 'if-set' %}{% endif %}{{ y }}", {}),
    ("namespace", "{% set ns = namespace(count=0, names=[]) %}{% for m in msgs %}{% set ns.count = ns.count + 1 %}"
     "{% endfor %}{{ ns.count }} {{ ns.names }}", {"msgs": [1, 2, 3]}),
    ("set_block_and_tuple", "{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set blk %}  body {{ a }} {% endset %}[{{ blk }}]",
     {}),
    ("macros", "{% macro greet(name, punct='!') -%}Hello {{ name }}{{ punct }}{%- endmacro %}"
     "{{ greet('Ann') }} {{ greet('Bob', punct='?') }} {{ greet(name='Cy') }}", {}),
    ("string_methods", "{{ s.startswith('He') }} {{ s.endswith('!') }} {{ s.split(' ') }} {{ s.split() }} "
     "{{ '  x  '.strip() }}|{{ 'xxhixx'.lstrip('x') }}|{{ 'xxhixx'.rstrip('x') }}|{{ s.replace('l', 'L') }} "
     "{{ s.lower() }} {{ s.upper() }} {{ s.title() }} {{ s.find('o') }} {{ s.count('l') }} {{ 'a-b-c'.split('-', 1) }}",
     {"s": "Hello world!"}),
    ("dict_methods", "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %} {{ d.keys()|list }} {{ d.values()|list }} "
     "{{ d.get('a') }} {{ d.get('zz', 'dflt') }} {{ d.get('zz') }} {{ 'a' in d }} {{ d['b'] }} {{ d.b }}",
     {"d": {"a": 1, "b": [1, 2], "c": None}}),
    ("slices", "{{ l[::-1] }} {{ l[1:3] }} {{ l[-1] }} {{ l[-2:] }} {{ l[:-1] }} {{ l[::2] }} {{ s[::-1] }} {{ s[1:] }} "
     "{{ s[-1] }} {{ l[10:] }}", {"l": [1, 2, 3, 4, 5], "s": "héllo"}),
    ("operators", "{{ 1 + 2 }} {{ 7 - 10 }} {{ 3 * 4 }} {{ 7 / 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} "
     "{{ 2 ** 8 }} {{ 'a' ~ 1 ~ none ~ true }} {{ 'ab' * 3 }} {{ [1] + [2] }} {{ 1.5 + 1 }} {{ 1 == 1.0 }} "
     "{{ 'a' < 'b' }} {{ [1, 2] < [1, 3] }} {{ 3 >= 3 }} {{ 1 != 2 }} {{ not true }} {{ true and false }} "
     "{{ 0 or 'x' }} {{ '' and 'y' }} {{ 2 in [1, 2] }} {{ 'x' not in 'abc' }} {{ 'ab' in 'cabd' }} {{ -(3) }}", {}),
    ("tests", "{{ x is defined }} {{ y is undefined }} {{ n is none }} {{ s is string }} {{ d is mapping }} "
     "{{ l is sequence }} {{ s is sequence }} {{ l is iterable }} {{ 3 is number }} {{ 2.5 is number }} "
     "{{ s is number }} {{ t is true }} {{ t is false }} {{ f is false }} {{ 4 is even }} {{ 3 is odd }} "
     "{{ 6 is divisibleby(3) }} {{ 3 is integer }} {{ 2.5 is float }} {{ t is boolean }} {{ s is lower }} "
     "{{ 'AB' is upper }} {{ x is not none }} {{ 1 is eq(1) }} {{ 2 is gt(1) }} {{ 'a' is in('abc') }} "
     "{{ d is iterable }} {{ n is string }} {{ range is callable }}",
     {"x": 1, "n": None, "s": "str", "d": {"k": 1}, "l": [1], "t": True, "f": False}),
    ("filters_basic", "{{ '  pad  '|trim }}|{{ 'xxhixx'|trim('x') }}|{{ l|length }} {{ s|length }} {{ d|length }} "
     "{{ s|upper }} {{ 'ABC'|lower }} {{ 'hello WORLD'|capitalize }} {{ 'hello world'|title }} {{ l|first }} "
     "{{ l|last }} {{ s|first }} {{ l|join(', ') }} {{ l|join }} {{ s|replace('l', 'L') }} {{ s|replace('l', 'L', 1) }} "
     "{{ l|reverse|list }} {{ s|reverse }} {{ d|items|list }} {{ s|list }} {{ '42'|int + 1 }} {{ 'x'|int }} "
     "{{ 'x'|int(7) }} {{ 3.9|int }} {{ '2.5'|float }} {{ 3|float }} {{ 42|string ~ '!' }} {{ none|string }} "
     "{{ -3|abs }} {{ 2.567|round(2) }} {{ 2.5|round }} {{ l|sum }} {{ l|min }} {{ l|max }} {{ [3, 1, 2]|sort }} "
     "{{ ['b', 'A', 'c']|sort }} {{ [3, 1, 2]|sort(reverse=true) }} {{ [1, 2, 1, 3]|unique|list }} "
     "{{ 'a\nb'|indent(2) }} {{ '<a&b>'|e }} {{ l|count }} {{ 'a b  c'|wordcount }} {{ 'abc'|center(7) }}|",
     {"l": [1, 2, 3], "s": "hello", "d": {"x": 1, "y": 2}}),
    ("filters_default", "{{ u|default('dflt') }} {{ n|default('dflt') }} {{ ''|default('dflt') }} "
     "{{ ''|default('dflt', true) }} {{ u|d('short') }} {{ x|default(5) }}", {"n": None, "x": 0}),
    ("filters_attr", "{{ users|map(attribute='name')|join(',') }} {{ users|selectattr('admin')|map(attribute='name')|list }} "
     "{{ users|rejectattr('admin')|map(attribute='name')|list }} {{ users|selectattr('age', 'gt', 30)|list|length }} "
     "{{ users|map(attribute='nick', default='?')|list }} {{ [1, 2, 3, 4]|select('even')|list }} "
     "{{ [1, 2, 3, 4]|reject('even')|list }} {{ ['a', 'b']|map('upper')|list }} {{ users|selectattr('nick', 'defined')|list }} "
     "{{ users|sort(attribute='age')|map(attribute='name')|list }} {{ users|selectattr('name', 'equalto', 'b')|list }}",
     {"users": [{"name": "a", "admin": True, "age": 40}, {"name": "b", "admin": False, "age": 20},
                {"name": "c", "age": 35, "nick": "cc"}]}),
    ("tojson", "{{ v|tojson }}\n{{ v|tojson(indent=2) }}\n{{ v|tojson(indent=0) }}\n{{ 'é\"\\\\\n\t\x01'|tojson }}\n"
     "{{ 'é'|tojson(ensure_ascii=true) }} {{ [1, 'x']|tojson(separators=(',', ':')) }} {{ {'b': 1, 'a': 2}|tojson(sort_keys=true) }} "
     "{{ none|tojson }} {{ 1.0|tojson }} {{ {}|tojson(indent=2) }} {{ []|tojson(indent=2) }}",
     {"v": {"z": 1, "a": [1, 2.5, None, True, False, "s"], "m": {"k": {}}, "e": [], "u": "ü😀", "f": 1e100,
            "neg": -0.001}}),
    ("printing", "{{ l }} {{ d }} {{ n }} {{ t }} {{ f }} {{ 1.0 }} {{ 0.1 + 0.2 }} {{ 1e20 }} {{ 1 / 3 }} {{ 2.5e-5 }} "
     "{{ 1e16 }} {{ 1e15 }} {{ (1, 'a') }} {{ ns }} {{ -0.0 }} {{ 12345.678 }}",
     {"l": [1, "a'b", "c\"d", None, True, 2.5, {"k": "v"}, "it's \"q\""], "d": {"a": [], "b": {"c": None}}, "n": None,
      "t": True, "f": False, "ns": []}),
    ("literals", "{{ 'single' }} {{ \"double\" }} {{ 'esc\\n\\t\\'q\\' \\\\ \\x41 \\u00e9 \\U0001F600' }} {{ 42 }} {{ 4.5 }} "
     "{{ 1_000 }} {{ [1, 'two', [3]] }} {{ {'k': 'v', 'n': {'x': 1}} }} {{ (1,) }} {{ () }} {{ true }} {{ True }} "
     "{{ none }} {{ None }} {{ false }} {{ {'a': 1}['a'] }} {{ 'abc'[1] }}", {}),
    ("inline_if", "{{ 'yes' if t else 'no' }} {{ 'yes' if f else 'no' }} {{ 'x' if f }}| {{ ('a' if t else 'b') ~ 'c' }} "
     "{{ 1 if f else 2 if t else 3 }}", {"t": True, "f": False}),
    ("whitespace_control", "a  {{- ' b ' -}}  c\n  {%- if true %}\n   d\n  {%- endif %}\n{# comment #}\ne {#- c2 -#} f\n"
     "    {% if true %}\ng\n    {% endif %}\n  h {%+ if true %}i{% endif %}\n{% if true +%}\nj{% endif %}\n"
     "{% raw %}{{ raw }} {% if %}{% endraw %}\n", {}),
    ("lstrip_trim", "<ul>\n    {% for x in [1, 2] %}\n    <li>{{ x }}</li>\n    {% endfor %}\n</ul>\n  {# c #}\nend\n"
     "\t{% if true %}tab{% endif %}\n  text {% if true %}keep{% endif %}\n", {}),
    ("trailing_newline", "line1\nline2\n", {}),
    ("crlf", "a\r\n{% if true %}\r\nb\r\n{% endif %}\r\nc\r\n", {}),
    ("filter_block", "{% filter upper %}shout {{ 'this' }}{% endfilter %}", {}),
    ("generation_tag", "{% for m in ['x', 'y'] %}{% generation %}[{{ m }}]{% endgeneration %}{% endfor %}", {}),
    ("call_global", "{{ range(3)|list }} {{ range(1, 7, 2)|list }} {{ range(5, 0, -2)|list }} {{ namespace(a=1).a }} "
     "{{ dict(a=1, b=2) }} {{ strftime_now('%Y')|length }} {{ [1, 2]|length }}", {}),
    ("messages_index", "{{ messages[0]['role'] }} {{ messages[-1].content }} {{ messages|length }} "
     "{{ (messages|selectattr('role', 'equalto', 'user')|list)[0].content }} {{ messages[0].missing is defined }} "
     "{{ messages[5] is defined }}",
     {"messages": [{"role": "user", "content": "first"}, {"role": "assistant", "content": "last"}]}),
    ("undefined_ops", "[{{ u }}] [{{ d.missing }}] {{ u is defined }} {{ u|length }} {{ 'x' in u|list }} "
     "{% for x in u %}never{% endfor %}{{ u == none }} {{ n.attr is defined }} {{ u|string }}|{{ u|default('') }}",
     {"d": {}, "n": None}),
    ("raise", "{% if x > 1 %}{{ raise_exception('x must be <= 1, got ' ~ x) }}{% endif %}ok", {"x": 2}),
    ("error_undefined_attr", "{{ u.attr }}", {}),
    ("error_type_add", "{{ 'a' + 1 }}", {}),
    ("error_none_add", "{{ n + 'a' }}", {"n": None}),
    ("error_call_undefined", "{{ nosuchfunc(1) }}", {}),
    ("error_list_append", "{% set l = [] %}{{ l.append(1) }}", {}),
    ("error_div_zero", "{{ 1 // 0 }}", {}),
    ("error_unknown_filter", "{{ 'x'|nosuchfilter }}", {}),
    ("error_unknown_test", "{{ 'x' is nosuchtest }}", {}),
    ("error_unterminated_var", "hello {{ name ", {}),
    ("error_unterminated_block", "{% if true %}never closed", {}),
    ("error_unterminated_comment", "a {# never closed", {}),
    ("error_bad_end", "{% for x in y %}{% endif %}", {}),
    ("error_unknown_tag", "{% frobnicate %}", {}),
    ("error_break_outside_loop", "{% break %}", {}),
    ("error_bad_expr", "{{ 1 + }}", {}),
    ("error_unexpected_paren", "{{ (1 + 2 }}", {}),
]


def render(env, source, context):
    try:
        return {"expected": env.from_string(source).render(**context)}
    except Exception as e:  # noqa: BLE001 -- any failure is an expected error case
        return {"error": f"{type(e).__name__}: {e}"}


def main():
    env = make_env()
    templates = {}
    cases = []
    for name, (fname, bos, eos) in TEMPLATES.items():
        with open(os.path.join(DATA, fname), encoding="utf-8") as f:
            source = f.read()
        templates[name] = {"file": fname, "bos_token": bos, "eos_token": eos}
        for ci, (cname, messages, extra) in enumerate(CONVERSATIONS):
            variants = [{}]
            if name.startswith("qwen3"):
                variants = [{}, {"enable_thinking": True}, {"enable_thinking": False}]
            for variant in variants:
                for agp in (False, True):
                    extra_context = dict(extra)
                    extra_context.update(variant)
                    ctx = {"messages": messages, "tools": None, "documents": None,
                           "add_generation_prompt": agp}
                    if bos is not None:
                        ctx["bos_token"] = bos
                    if eos is not None:
                        ctx["eos_token"] = eos
                    ctx.update(extra_context)
                    case = {"template": name, "conversation": ci, "add_generation_prompt": agp,
                            "extra_context": extra_context}
                    case.update(render(env, source, ctx))
                    cases.append(case)
    features = []
    for fname, source, context in FEATURES:
        item = {"name": fname, "source": source, "context": context}
        item.update(render(env, source, context))
        features.append(item)
    out = {
        "generator": "tools/make_chat_template_fixtures.py (jinja2 " + jinja2.__version__ + ")",
        "templates": templates,
        "conversations": [{"name": n, "messages": m} for n, m, _ in CONVERSATIONS],
        "cases": cases,
        "features": features,
    }
    path = os.path.join(DATA, "expected.json")
    # One case per line keeps the file small and diffable.
    with open(path, "w", encoding="utf-8") as f:
        f.write("{\n")
        keys = list(out)
        for ki, key in enumerate(keys):
            value = out[key]
            f.write(json.dumps(key) + ": ")
            if isinstance(value, list):
                f.write("[\n" + ",\n".join(json.dumps(v, ensure_ascii=False) for v in value) + "\n]")
            else:
                f.write(json.dumps(value, ensure_ascii=False))
            f.write(",\n" if ki + 1 < len(keys) else "\n")
        f.write("}\n")
    n_err = sum(1 for c in cases if "error" in c)
    f_err = sum(1 for c in features if "error" in c)
    print(f"wrote {path}: {len(cases)} template cases ({n_err} errors), "
          f"{len(features)} feature cases ({f_err} errors)")


if __name__ == "__main__":
    main()
