#!/usr/bin/env python3
"""Regenerates the tokenizer test fixtures of c8 (tests/data/tokenizer/).

  python3 tools/make_tokenizer_fixtures.py PATH/TO/smollm2/tokenizer.json [--out-dir DIR]
      [--retrain-qwen]

Writes, with a fixed seed:
  smollm2_fixtures.json     >= 1000 strings encoded/decoded by the Python `tokenizers` library
                            with the given (GGUF-converted SmolLM2) tokenizer.json.
  qwen_style_tokenizer.json a tiny Qwen2-style tokenizer (NFC normalizer, Split with the Qwen
                            regex + ByteLevel(use_regex=false), ByteLevel decoder, added tokens
                            with lstrip/rstrip/single_word/normalized flags, merges stored as
                            legacy "a b" strings), trained with tokenizers' BPE trainer; only
                            (re)trained when absent or with --retrain-qwen.
  qwen_style_fixtures.json  >= 300 strings for it.
  variant_fixtures.json     the Qwen-style vocabulary under other normalizer / pre-tokenizer
                            settings (GPT-2 ByteLevel regex with add_prefix_space, Digits
                            contiguous, Split behaviours Removed / MergedWithPrevious /
                            MergedWithNext / Contiguous / invert / String pattern / a regex with
                            empty matches, the Llama-3 regex, NFD / NFKC, no pre-tokenizer), each
                            with its own strings.

Fixture case fields: "t" the input text (valid UTF-8) or "b64" the raw input bytes (base64, for
inputs with invalid UTF-8; the expected ids are those of tokenizers.encode(bytes.decode("utf-8",
"replace")), which is what c8's Encode does with invalid bytes); "ps": false when encoded with
special tokens not parsed (encode_special_tokens = True); "ids"; "dec": decode(ids,
skip_special_tokens=False) when it differs from the (replaced) input text; "decs": decode(ids,
skip_special_tokens=True) when it differs from the "dec" value.
"""
import argparse
import base64
import json
import os
import random
import sys

from tokenizers import (AddedToken, Regex, Tokenizer, decoders, models, normalizers,
                        pre_tokenizers, processors, trainers)

QWEN_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
              r"|\s*[\r\n]+|\s+(?!\S)|\s+")

WORDS = ("the of and to in is was he for it with as his on be at by had are but from or have an "
         "they which one you were her all she there would their we him been has when who will more "
         "no if out so said what up its about into than them can only other new some could time "
         "these two may then do first any my now such like our over man me even most made after "
         "also did many before must through back years where much your way well down should "
         "because each just those people how too little state good very make world still own see "
         "men work long get here between both life being under never day same another know while "
         "last might us great old year off come since against go came right used take three "
         "Hello World Python Tokenizer Transformer London Paris Monday January Ünïcödé naïve café "
         "résumé façade coöperate Straße über São Paulo Zürich").split()

CODE = [
    "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "import numpy as np\nx = np.arange(10, dtype=np.float32)\nprint(x.mean(), x[::2])\n",
    "class Foo(Bar):\n\tdef __init__(self, *args, **kwargs):\n\t\tsuper().__init__(*args)\n",
    "#include <vector>\nint main() {\n  std::vector<int> v{1, 2, 3};\n  for (auto& x : v) x *= 2;\n  return 0;\n}\n",
    "template <typename T>\nT max(T a, T b) { return a > b ? a : b; }  // C++\n",
    "const f = async (a, b) => {\n  const r = await fetch(`/api/${a}?b=${b}`);\n  return r.json();\n};\n",
    "fn main() {\n    let v: Vec<u32> = (0..10).map(|x| x * x).collect();\n    println!(\"{:?}\", v);\n}\n",
    "package main\n\nimport \"fmt\"\n\nfunc main() {\n\tfmt.Println(\"hi\", 42)\n}\n",
    "SELECT id, name FROM users WHERE age >= 18 AND name LIKE '%son' ORDER BY id DESC;\n",
    "<div class=\"a b\"><p id='x'>Hello &amp; bye</p><!-- comment --></div>\n",
    "#!/bin/bash\nfor f in *.txt; do\n  echo \"$f\" | tr a-z A-Z >> out.log 2>&1\ndone\n",
    "{\"key\": [1, 2.5, -3e10, true, null], \"nested\": {\"a\": \"b\\n\"}}\n",
    "public static void main(String[] args) { System.out.println(\"x=\" + x++); }\n",
    "x <<= 2; y >>= 3; z ^= ~w; a &&= b || !c; p->q = &r[0]; i != j; k == l;\n",
    "    if (err != nil) {\r\n        return err\r\n    }\r\n",
    "\\begin{equation} E = mc^2 \\quad \\sum_{i=0}^{n} x_i \\end{equation}\n",
    "s = 'it''s'; t = \"don't\"; u = r'\\d+\\s*'; v = f\"{a!r:>10}\"\n",
]

SCRIPTS = [
    "我们今天去公园散步，天气非常好。", "人工智能正在改变世界。", "東京は日本の首都です。",
    "ひらがなとカタカナ、そして漢字。", "한국어 문장도 테스트합니다.", "안녕하세요, 만나서 반갑습니다!",
    "مرحبا بالعالم، كيف حالك اليوم؟", "اللغة العربية جميلة جداً.", "नमस्ते दुनिया, आप कैसे हैं?",
    "हिन्दी भाषा में परीक्षण।", "Привет, мир! Как дела?", "Ελληνικά γράμματα αβγδε.",
    "שלום עולם", "ภาษาไทยไม่มีช่องว่าง", "Tiếng Việt có dấu: Hà Nội, Đà Nẵng.",
    "Ça va? Où est la bibliothèque?", "¿Dónde está el baño? ¡Olé!", "Zażółć gęślą jaźń.",
    "Ünïcödé ÀÉÎÕÜ àéîõü ßẞ ﬁ ﬂ Å Ω µ", "ქართული ენა", "Հայերեն", "አማርኛ", "తెలుగు భాష", "தமிழ்",
]

EMOJI = ["😀", "👍", "👍🏽", "👍🏿", "👨‍👩‍👧‍👦", "👩🏾‍💻", "🏳️‍🌈", "🇫🇷", "🇯🇵", "1️⃣", "#️⃣", "❤️",
         "🧑‍🤝‍🧑", "😶‍🌫️", "🐈‍⬛", "🤷🏻‍♀️", "✋🏼", "🎉🎉🎉", "™", "©", "→", "∑", "∞"]

COMBINING = ["e\u0301", "a\u0308", "n\u0303", "o\u0302\u0323", "A\u030A", "\u1100\u1161\u11A8",
             "Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d", "q\u0307\u0323", "\u0915\u094d\u0937",
             "c\u0327", "i\u0307", "\u05e9\u05c1\u05b8", "\u0627\u064e", "u\u0308\u0304"]

SPACES = [" ", "  ", "   ", "\t", "\t\t", "\n", "\n\n", "\r\n", "\r\n\r\n", "\r", " \n", "\n ",
          " \t \n", "\u00a0", "\u3000", "\u2009", "\u200b", "\u180e", "\u2028", "\x0b", "\x0c",
          "\u0085", "\ufeff", "        ", "\n\n\n\n"]

PUNCT = ["!", "?", ".", "...", "!!!", "?!", "---", "--", "—", "–", "(", ")", "[]", "{}", "<>",
         "\"", "'", "''", "``", "```", "***", "___", "~~", "::", ";;", "@#$%", "^&*", "|", "\\",
         "/", "//", "=>", "->", "<=", "==", "!==", "«", "»", "„", "“", "”", "‘", "’", "…", "•",
         "¿", "¡", "。", "、", "！", "？", "«»"]

INVALID = [b"\xff", b"\xfe\xff", b"\x80", b"\xbf\xbf", b"\xc0\xaf", b"\xc1\xbf", b"\xe0\x80\x80",
           b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xf4\x90\x80\x80", b"\xf5\x80", b"\xf8\x88\x80\x80\x80",
           b"\xe2\x82", b"\xf0\x9f\x98", b"\xf0\x9f", b"\xc3", b"\xe6\x97", b"\x00", b"\xc3\x28",
           b"\xe2\x28\xa1", b"\xf0\x28\x8c\xbc", b"\xf0\x90\x28\xbc", b"\xa0\xa1", b"\xe2\x82\xa1\xa1"]


def rand_word(rng):
    w = rng.choice(WORDS)
    r = rng.random()
    if r < 0.1:
        w = w.upper()
    elif r < 0.3:
        w = w.capitalize()
    return w


def prose(rng):
    n = rng.randint(3, 25)
    out = []
    for _ in range(n):
        w = rand_word(rng)
        r = rng.random()
        if r < 0.08:
            w += rng.choice(["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'LL", "'D", "’s"])
        elif r < 0.18:
            w += rng.choice([",", ".", ";", ":", "!", "?", "...", ")", "\""])
        out.append(w)
    return " ".join(out) + rng.choice(["", ".", "!", "?", "\n"])


def random_chars(rng, ranges, n):
    return "".join(chr(rng.randint(lo, hi)) for lo, hi in [rng.choice(ranges) for _ in range(n)])


UNI_RANGES = [(0x20, 0x7e), (0xa0, 0x24f), (0x370, 0x3ff), (0x400, 0x4ff), (0x590, 0x5ff),
              (0x600, 0x6ff), (0x900, 0x97f), (0xe00, 0xe7f), (0x1100, 0x11ff), (0x2000, 0x206f),
              (0x2190, 0x23ff), (0x3040, 0x30ff), (0x4e00, 0x9fff), (0xac00, 0xd7a3),
              (0xff00, 0xffef), (0x1f300, 0x1f6ff), (0x1f900, 0x1f9ff), (0x10000, 0x1007f),
              (0x20000, 0x2a6df), (0x0300, 0x036f), (0xe000, 0xe0ff)]


def digits(rng):
    k = rng.random()
    if k < 0.3:
        return str(rng.randint(0, 10 ** rng.randint(1, 40)))
    if k < 0.5:
        return f"{rng.uniform(-1e6, 1e6):.{rng.randint(0, 8)}f}"
    if k < 0.6:
        return "".join(chr(0x660 + rng.randint(0, 9)) for _ in range(rng.randint(1, 8)))
    if k < 0.7:
        return rng.choice(["²³", "½¼¾", "Ⅻ", "①②③", "१२३", "１２３", "٣.١٤"])
    if k < 0.85:
        return f"{rng.randint(1, 12)}/{rng.randint(1, 28)}/{rng.randint(1900, 2100)} {rng.randint(0, 23)}:{rng.randint(0, 59):02d}"
    return "+" + "-".join(str(rng.randint(10, 9999)) for _ in range(rng.randint(2, 4)))


def long_word(rng):
    k = rng.randint(0, 5)
    n = rng.randint(100, 600)
    if k == 0:
        return rng.choice("abcxyz") * n
    if k == 1:
        return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(n))
    if k == 2:
        return "".join(rng.choice("0123456789") for _ in range(n))
    if k == 3:
        return "https://example.com/" + "/".join(rand_word(rng) for _ in range(n // 20)) + "?q=1&r=2"
    if k == 4:
        return base64.b64encode(bytes(rng.randint(0, 255) for _ in range(n))).decode()
    return "".join(rng.choice("漢字かなカナ한글") for _ in range(n // 3))


def special_mix(rng, specials):
    parts = []
    for _ in range(rng.randint(1, 6)):
        r = rng.random()
        if r < 0.4:
            parts.append(rng.choice(specials))
        elif r < 0.5:
            s = rng.choice(specials)
            parts.append(s[: rng.randint(1, len(s) - 1)])  # a truncated special token
        elif r < 0.8:
            parts.append(prose(rng))
        else:
            parts.append(rng.choice(SPACES))
    sep = rng.choice(["", "", " ", "\n"])
    return sep.join(parts)


def invalid(rng):
    parts = []
    for _ in range(rng.randint(1, 5)):
        r = rng.random()
        if r < 0.4:
            parts.append(rng.choice(INVALID))
        elif r < 0.55:
            parts.append(bytes(rng.randint(0, 255) for _ in range(rng.randint(1, 6))))
        elif r < 0.7:
            e = rng.choice(EMOJI + SCRIPTS).encode()
            parts.append(e[: rng.randint(1, len(e))])  # possibly cut inside a sequence
        else:
            parts.append(prose(rng).encode())
    return b"".join(parts)


def mixture(rng, specials):
    gens = [lambda: prose(rng), lambda: rng.choice(CODE), lambda: rng.choice(SCRIPTS),
            lambda: rng.choice(EMOJI), lambda: rng.choice(COMBINING), lambda: rng.choice(SPACES),
            lambda: digits(rng), lambda: rng.choice(PUNCT) * rng.randint(1, 4),
            lambda: random_chars(rng, UNI_RANGES, rng.randint(1, 12))]
    if specials:
        gens.append(lambda: rng.choice(specials))
    return "".join(rng.choice(gens)() for _ in range(rng.randint(2, 7)))


def make_inputs(rng, specials, count):
    """Returns a list of (raw bytes, parse_special) of about `count` varied inputs."""
    fixed = ["", " ", "a", "Hello world", " Hello world", "Hello  world", "hello\nworld",
             "I'm sure it's fine, they've said we'll see; you'd agree?", "IT'S LOUD", "x's 'll",
             "   leading", "trailing   ", "\n\n\nnewlines\n\n", "tab\tseparated\tvalues",
             "windows\r\nline\r\nendings\r\n", "mixed \t\n \r\n\t  ", "1234567890", "3.14159",
             "1,000,000", "12:30pm", "v1.2.3-rc4", "!!!???", "...", "-- -- --", "a\u0301",
             "e\u0301te\u0301", "naïve café", "😀", "👨‍👩‍👧‍👦 family", "👍🏽👍🏿", "🇺🇸🇫🇷",
             "a" * 1000, "ab" * 300, " " * 50, "\n" * 20, "\t" * 10, "0" * 100]
    items = [(s.encode(), True) for s in fixed]
    for s in specials:
        items += [(s.encode(), True), (s.encode(), False), (("x" + s + "y").encode(), True),
                  ((" " + s + " ").encode(), True), ((s + s).encode(), True),
                  (("a " + s + "\n").encode(), False)]
    gens = [
        (0.18, lambda: prose(rng)),
        (0.10, lambda: rng.choice(CODE) if rng.random() < 0.5 else "".join(
            rng.sample(CODE, 2))[: rng.randint(10, 300)]),
        (0.08, lambda: rng.choice(SCRIPTS) + " " + rng.choice(SCRIPTS)),
        (0.06, lambda: "".join(rng.choice(EMOJI) for _ in range(rng.randint(1, 6))) + " " + prose(rng)),
        (0.05, lambda: "".join(rng.choice(COMBINING) for _ in range(rng.randint(1, 5)))),
        (0.07, lambda: rand_word(rng) + "".join(rng.choice(SPACES) for _ in range(rng.randint(1, 5))) + rand_word(rng)),
        (0.06, lambda: digits(rng) + " " + digits(rng)),
        (0.05, lambda: "".join(rng.choice(PUNCT) for _ in range(rng.randint(1, 8)))),
        (0.02, lambda: long_word(rng)),
        (0.07, lambda: random_chars(rng, UNI_RANGES, rng.randint(1, 30))),
        (0.14, lambda: mixture(rng, specials)),
        (0.08, lambda: special_mix(rng, specials) if specials else prose(rng)),
    ]
    weights = [w for w, _ in gens]
    while len(items) < count:
        if rng.random() < 0.06:
            items.append((invalid(rng), rng.random() < 0.8))
            continue
        _, g = rng.choices(gens, weights)[0]
        s = g()
        items.append((s.encode(), rng.random() < 0.85))
    return items


def make_cases(tok, items):
    cases = []
    for raw, parse_special in items:
        text = raw.decode("utf-8", "replace")
        tok.encode_special_tokens = not parse_special
        ids = tok.encode(text, add_special_tokens=False).ids
        tok.encode_special_tokens = False
        dec = tok.decode(ids, skip_special_tokens=False)
        decs = tok.decode(ids, skip_special_tokens=True)
        c = {}
        try:
            raw.decode("utf-8")
            c["t"] = text
        except UnicodeDecodeError:
            c["b64"] = base64.b64encode(raw).decode()
        if not parse_special:
            c["ps"] = False
        c["ids"] = ids
        if dec != text:
            c["dec"] = dec
        if decs != dec:
            c["decs"] = decs
        cases.append(c)
    return cases


def write_fixture(path, source, cases):
    with open(path, "w", encoding="utf-8") as f:
        f.write('{"tokenizer": %s, "cases": [\n' % json.dumps(source))
        f.write(",\n".join(json.dumps(c, ensure_ascii=False, separators=(",", ":")) for c in cases))
        f.write("\n]}\n")
    print(f"wrote {path}: {len(cases)} cases, {os.path.getsize(path)} bytes")


def training_corpus(rng):
    lines = []
    for _ in range(3000):
        lines.append(mixture(rng, []))
        lines.append(prose(rng))
    lines += CODE * 20 + SCRIPTS * 20
    return lines


def build_qwen_style(path):
    rng = random.Random(4321)
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=3000, min_frequency=2, show_progress=False,
                                  special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(training_corpus(rng), trainer)
    tok.add_tokens([
        AddedToken("<think>", special=False, normalized=False),
        AddedToken("</think>", special=False, normalized=False),
        AddedToken("<tool_call>", special=False, normalized=True),
        AddedToken("[MASK]", special=True, lstrip=True, rstrip=True, normalized=False),
        AddedToken("hello", special=False, single_word=True, normalized=True),
        AddedToken("cafe\u0301", special=False, normalized=True),  # matched as NFC "café"
        AddedToken("<sep>", special=True, rstrip=True, normalized=False),
    ])
    j = json.loads(tok.to_str())
    # Store merges in the legacy "a b" form (byte-level tokens never contain a space).
    j["model"]["merges"] = [" ".join(m) if isinstance(m, list) else m for m in j["model"]["merges"]]
    with open(path, "w", encoding="utf-8") as f:
        json.dump(j, f, ensure_ascii=False, separators=(",", ":"))
    print(f"wrote {path}: {os.path.getsize(path)} bytes")


QWEN_EXTRA = ["hello world", "sayhello", "hello_x", "hello!", "(hello)", " hello ", "HELLO hello",
              "héllo hello", "x [MASK] y", "x   [MASK]   y", "[MASK][MASK]", "a\t[MASK]\nb",
              "<think>plan</think>answer", " <think> ", "<tool_call>{\"a\":1}", "cafe\u0301 au lait",
              "café au lait", "CAFE\u0301", "a <sep>   b", "<sep><sep>", "<|im_start|>user\nhi<|im_end|>\n",
              "ﬁnal ﬂow ℌ ①", "Å vs A\u030A vs \u212B", "\u1100\u1161\u11A8 vs \uAC01"]


BL = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}
LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
                r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def split(pattern, behavior, invert=False, literal=False):
    return {"type": "Split", "pattern": {"String" if literal else "Regex": pattern},
            "behavior": behavior, "invert": invert}


VARIANTS = [
    (None, {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}),
    ({"type": "NFKC"}, {"type": "Sequence", "pretokenizers": [
        {"type": "Digits", "individual_digits": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]}),
    ({"type": "NFD"}, {"type": "Sequence", "pretokenizers": [split(" ", "Removed", literal=True), BL]}),
    (None, {"type": "Sequence", "pretokenizers": [split(r"\d+", "MergedWithPrevious"), BL]}),
    (None, {"type": "Sequence", "pretokenizers": [split(r"[,.;!?]", "MergedWithNext"), BL]}),
    (None, {"type": "Sequence", "pretokenizers": [split(r"\s+", "Contiguous", invert=True), BL]}),
    (None, {"type": "Sequence", "pretokenizers": [split(r"a*", "Isolated"), BL]}),
    ({"type": "Sequence", "normalizers": [{"type": "NFD"}, {"type": "NFC"}]},
     {"type": "Sequence", "pretokenizers": [split(LLAMA3_REGEX, "Isolated"), BL]}),
    (None, None),
]


def build_variants(qpath, out_path):
    base = json.load(open(qpath, encoding="utf-8"))
    variants = []
    for i, (norm, pre) in enumerate(VARIANTS):
        j = dict(base)
        j["normalizer"] = norm
        j["pre_tokenizer"] = pre
        tok = Tokenizer.from_str(json.dumps(j))
        items = make_inputs(random.Random(500 + i), ["<|im_start|>", "[MASK]", "hello"], 70)
        variants.append({"normalizer": norm, "pre_tokenizer": pre, "cases": make_cases(tok, items)})
    with open(out_path, "w", encoding="utf-8") as f:
        f.write('{"base": "qwen_style_tokenizer.json", "variants": [\n')
        parts = []
        for v in variants:
            cases = ",\n".join(json.dumps(c, ensure_ascii=False, separators=(",", ":")) for c in v["cases"])
            parts.append('{"normalizer": %s, "pre_tokenizer": %s, "cases": [\n%s]}' % (
                json.dumps(v["normalizer"]), json.dumps(v["pre_tokenizer"]), cases))
        f.write(",\n".join(parts))
        f.write("\n]}\n")
    print(f"wrote {out_path}: {len(variants)} variants, {os.path.getsize(out_path)} bytes")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("tokenizer_json", help="SmolLM2 tokenizer.json (from the GGUF converter)")
    ap.add_argument("--out-dir", default=os.path.join(os.path.dirname(__file__), "..", "tests",
                                                      "data", "tokenizer"))
    ap.add_argument("--retrain-qwen", action="store_true")
    args = ap.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)

    smol = Tokenizer.from_file(args.tokenizer_json)
    specials = [t.content for t in smol.get_added_tokens_decoder().values() if t.special]
    specials = sorted(specials)[:8]
    items = make_inputs(random.Random(1234), specials, 1100)
    write_fixture(os.path.join(args.out_dir, "smollm2_fixtures.json"),
                  "smollm2-135m-instruct/tokenizer.json", make_cases(smol, items))

    qpath = os.path.join(args.out_dir, "qwen_style_tokenizer.json")
    if args.retrain_qwen or not os.path.exists(qpath):
        build_qwen_style(qpath)
    qwen = Tokenizer.from_file(qpath)
    qspecials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "[MASK]", "<sep>", "<think>",
                 "</think>", "<tool_call>"]
    items = [(s.encode(), True) for s in QWEN_EXTRA] + [(s.encode(), False) for s in QWEN_EXTRA[:12]]
    items += make_inputs(random.Random(99), qspecials, 360)
    write_fixture(os.path.join(args.out_dir, "qwen_style_fixtures.json"),
                  "qwen_style_tokenizer.json", make_cases(qwen, items))
    build_variants(qpath, os.path.join(args.out_dir, "variant_fixtures.json"))


if __name__ == "__main__":
    sys.exit(main())
