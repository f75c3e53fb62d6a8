"""Structured outputs' value constraints: minLength / maxLength, pattern and format on strings,
minimum / maximum (exclusive too) on numbers and integers. The pattern compiler against Python's
`re`; the byte automaton on values in and out of bounds; random walks through the automaton (it
never dead-ends, and what it completes the `jsonschema` package validates, formats included); the
token mask against feeding every token; and the real model's output."""
import datetime
import ipaddress
import json
import random
import re
import uuid

import jsonschema
import pydantic
import pytest
from hypothesis import given, settings, strategies as st

from llmasos import LLM, SamplingParams, _core
from llmasos.json_schema import compile_schema
from llmasos.regex_dfa import FORMATS, compile_pattern
from token_masks import assert_masks_at, fed, random_document, scanner, token_pieces

def hostname(s):
    labels = s.split(".")
    if len(s) > 253 or labels[-1].isdigit():
        raise ValueError(s)
    for label in labels:
        if not (1 <= len(label) <= 63 and label[0] != "-" and label[-1] != "-" and
                all(c.isascii() and (c.isalnum() or c == "-") for c in label)):
            raise ValueError(s)


FORMAT_CHECKS = {  # each format's own parser, as a reference for what its pattern lets through
    "date": datetime.date.fromisoformat,
    "time": lambda s: datetime.time.fromisoformat(s.replace("Z", "+00:00")),
    "date-time": lambda s: datetime.datetime.fromisoformat(s.replace("Z", "+00:00")),
    "uuid": uuid.UUID,
    "ipv4": ipaddress.IPv4Address,
    "email": lambda s: s.count("@") == 1 or (_ for _ in ()).throw(ValueError(s)),
    "duration": pydantic.TypeAdapter(datetime.timedelta).validate_python,
    "uri": pydantic.TypeAdapter(pydantic.HttpUrl).validate_python,
    "ipv6": ipaddress.IPv6Address,
    "ipvanyaddress": ipaddress.ip_address,
    "ipvanyinterface": ipaddress.ip_interface,
    "hostname": hostname,
}


def scan(graph, data: bytes):
    return _core.schema_scan(graph, data)


def one(prop) -> dict:
    return {"type": "object", "properties": {"x": prop}, "additionalProperties": False}


# ---- patterns -----------------------------------------------------------------------------------

PATTERNS = [r"^[a-z]+$", r"abc", r"^\d{3}-\d{4}$", r"^(foo|ba+r)*x?$", r"^[^a-c]{2,4}$", r"^.{0,3}$",
            r"^(?:ab){2}$", r"^[\w.-]+@[\w-]+\.[a-z]{2,3}$", r"^\$\d+(\.\d\d)?$", r"^[^]$", r"^é+$",
            r"^[-a]+$", r"^\u00e9x?$", r"^(?<word>[a-c]+)-\1?$".replace(r"\1?", "z"), r"\d\d", r"^a{2,}b*?$"]
ALPHABET = "abcxrfoz0123456789-.@$é_ Z\u4e2d"


@pytest.mark.parametrize("pattern", PATTERNS)
def test_pattern_matches_like_python_re(pattern):
    """On random strings, the DFA accepts exactly what Python's `re` finds (search semantics, as
    JSON Schema's), for strings without characters JSON would have to escape."""
    dfa = compile_pattern(pattern)
    ref = re.compile(pattern.replace("[^]", r"[\s\S]").replace("(?<word>", "(?P<word>"), re.ASCII)
    rng = random.Random(pattern)
    for _ in range(2000):
        s = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 7)))
        assert dfa.matches(s.encode()) == (ref.search(s) is not None), (pattern, s)


def test_non_ascii_digits_are_no_repeat_count():
    assert compile_pattern("^a{\u0661}$").matches("a{\u0661}".encode())


def test_patterns_too_slow_to_compile_are_refused():
    slow = "^" + "".join(f"(?:[{a}-{b}]?){{999}}" for a, b in ("ae", "fj", "ko", "pt")) + "$"
    with pytest.raises(ValueError, match="too complex|too large"):
        compile_schema(one({"type": "string", "pattern": slow}))


@pytest.mark.parametrize("pattern", [r"^.+$", r"^[^@]+@[^@]+$", r"^\S+$"])
def test_long_max_length_beside_a_pattern_is_counted_by_the_automaton(pattern):
    """Too many states to fold maxLength into the DFA: the automaton counts, and takes a byte only
    while the characters still needed fit (so it never dead-ends, e.g. before the '@')."""
    g = compile_schema(one({"type": "string", "pattern": pattern, "maxLength": 200}))
    fill = "x@y" if "@" in pattern else "xy"
    body = (fill + "z" * 300)[:200]
    assert scan(g, b'{"x":"' + body.encode() + b'"}') == (208, True)
    assert scan(g, b'{"x":"' + body.encode() + b'z"}')[0] == 206
    if "@" in pattern:  # 199 characters without '@': only the '@' and one more may come
        doc = b'{"x":"' + b"z" * 198
        assert scan(g, doc + b"z")[0] == len(doc) and scan(g, doc + b"@z") == (len(doc) + 2, False)
    rng = random.Random(pattern)
    for _ in range(3):
        walk = b'{"x":"'
        while not scan(g, walk)[1]:
            nxt = [b for b in range(32, 127) if scan(g, walk + bytes([b]))[0] == len(walk) + 1]
            assert nxt
            walk += bytes([rng.choice(nxt)])
        assert len(json.loads(walk)["x"]) <= 200


def test_pattern_with_length_bounds_counts_characters():
    words = ["a", "ab", "éé", "abc", "ééé", "abcd", "aé1", "ééééé"]
    dfa = compile_pattern(r"^[a-zé]+$", 2, 3)
    assert [w for w in words if dfa.matches(w.encode())] == ["ab", "éé", "abc", "ééé"]
    g = compile_schema(one({"type": "string", "pattern": r"^[a-zé]+$", "minLength": 2, "maxLength": 3}))
    assert [w for w in words if scan(g, b'{"x":"%s"}' % w.encode())[1]] == ["ab", "éé", "abc", "ééé"]


@pytest.mark.parametrize("pattern,match", [
    (r"(?=a)", "lookaround"), (r"(?!a)", "lookaround"), (r"a\1", r"\\1"), (r"\bword", r"\\b"),
    (r"a^b", "start / end"), (r"^a|b$", "anchored alternation"), (r"a{3,2}", "below"), (r"a{5000}", "repeat"),
    (r"(ab", "unclosed"), (r"ab)", "unmatched"), (r"*a", "stray"), (r"[z-a]", "bad range"),
    (r"^[]$", "no string"), ("^\"$", "no string"), (r"^(a{1000}){1000}$", "too large"), (123, "must be a string"),
    (r"a**", "nothing to repeat"), (r"x{1}{2}", "nothing to repeat"), (r"[\01]", "octal"),
])
def test_unsupported_patterns_are_refused(pattern, match):
    with pytest.raises(ValueError, match=match):
        compile_pattern(pattern)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_format_patterns_accept_only_valid_values(fmt):
    """Random walks through each format's DFA: every string it completes parses as the format."""
    dfa = compile_pattern(FORMATS[fmt])
    rng = random.Random(fmt)
    done = 0
    for _ in range(200):
        s, out = 0, bytearray()
        for _ in range(60):
            if dfa.accept[s] and rng.random() < 0.3:
                break
            nxt = [b for b in range(256) if dfa.next[s][dfa.classes[b]] >= 0]
            assert nxt or dfa.accept[s]  # no dead end
            if not nxt:
                break
            b = rng.choice(nxt)
            out.append(b)
            s = dfa.next[s][dfa.classes[b]]
        if dfa.accept[s]:
            FORMAT_CHECKS[fmt](out.decode())
            done += 1
    assert done > 20


def test_format_examples():
    ok = {"date": "2024-12-31", "time": "23:59:59.5+01:00", "date-time": "1999-02-28T00:00:00Z",
          "uuid": "123e4567-e89b-12d3-a456-426614174000", "ipv4": "192.168.0.255", "email": "a.b+c@ex-ample.co.uk"}
    bad = {"date": "2023-02-30", "time": "24:00:00Z", "date-time": "2024-01-01 00:00:00Z",
           "uuid": "123e4567e89b12d3a456426614174000", "ipv4": "256.1.1.1", "email": "a@b"}
    for fmt, value in ok.items():
        assert compile_pattern(FORMATS[fmt]).matches(value.encode()), fmt
        assert not compile_pattern(FORMATS[fmt]).matches(bad[fmt].encode()), fmt


# ---- the automaton --------------------------------------------------------------------------------

def test_string_length_bounds():
    g = compile_schema(one({"type": "string", "minLength": 2, "maxLength": 3}))
    for value in ["ab", "abc", "é\u4e2d", "a\\n", "\\u00e9\\u00e9", "\U0001F600\U0001F600"]:
        doc = b'{"x":"' + value.encode() + b'"}'
        assert scan(g, doc) == (len(doc), True), doc
    for value, taken in [("a", 7), ("abcd", 9), ("\\ud83d\\ude00", 9), ('\\"\\"\\"\\"', 12)]:
        doc = b'{"x":"' + value.encode() + b'"}'
        assert scan(g, doc)[0] == taken, doc


@settings(max_examples=300, derandomize=True, deadline=None, database=None)
@given(lo=st.integers(-10**6, 10**6), span=st.integers(0, 10**5), value=st.integers(-2 * 10**6, 2 * 10**6),
       excl=st.booleans())
def test_integer_bounds(lo, span, value, excl):
    hi = lo + span
    schema = one({"type": "integer", ("exclusiveMinimum" if excl else "minimum"): lo, "maximum": hi})
    if excl and span == 0:
        with pytest.raises(ValueError, match="no integer"):
            compile_schema(schema)
        return
    g = compile_schema(schema)
    doc = b'{"x":%d}' % value
    inside = (value > lo if excl else value >= lo) and value <= hi
    assert (scan(g, doc) == (len(doc), True)) == inside
    if inside:
        jsonschema.validate(json.loads(doc), schema)


@settings(max_examples=300, derandomize=True, deadline=None, database=None)
@given(lo=st.decimals(-1000, 1000, places=3), span=st.decimals(0, 50, places=2),
       value=st.decimals(-1100, 1100, places=6), excl=st.booleans())
def test_number_bounds(lo, span, value, excl):
    hi = lo + span
    schema = one({"type": "number", "minimum": float(lo), ("exclusiveMaximum" if excl else "maximum"): float(hi)})
    if excl and span == 0:
        with pytest.raises(ValueError, match="no number"):
            compile_schema(schema)
        return
    g = compile_schema(schema)
    text = format(value, "f")
    if text.startswith("-") and value == 0:
        text = text[1:]
    doc = b'{"x":' + text.encode() + b"}"
    inside = value >= lo and (value < hi if excl else value <= hi)
    assert (scan(g, doc) == (len(doc), True)) == inside, doc
    if inside:
        jsonschema.validate(json.loads(doc), schema)


def test_bounded_numbers_refuse_exponents_and_excess_digits():
    g = compile_schema(one({"type": "number", "minimum": 0}))
    for doc, taken in [(b'{"x":1e5}', 6), (b'{"x":0.1234567}', 13), (b'{"x":-1}', 6), (b'{"x":1234567890}', 14)]:
        assert scan(g, doc)[0] == taken, doc
    assert scan(g, b'{"x":-0}') == (8, True)  # -0 is 0, within minimum 0
    with pytest.raises(ValueError, match="no integer"):
        compile_schema(one({"type": "integer", "minimum": 1.5, "maximum": 1.9}))
    with pytest.raises(ValueError, match="no number"):
        compile_schema(one({"type": "number", "exclusiveMinimum": 1, "exclusiveMaximum": 1.0000001}))
    with pytest.raises(ValueError, match="finite"):
        compile_schema(one({"type": "number", "minimum": "0"}))
    g = compile_schema(one({"type": "integer", "minimum": 5, "exclusiveMaximum": True, "maximum": 8}))  # draft 4
    assert [v for v in range(3, 10) if scan(g, b'{"x":%d}' % v)[1]] == [5, 6, 7]


WALK_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "code": {"type": "string", "pattern": "^[A-Z]{2}-[0-9]{2,4}$"},
        "name": {"type": "string", "minLength": 1, "maxLength": 6},
        "tag": {"type": "string", "pattern": "x+", "maxLength": 4},
        "when": {"type": "string", "format": "date-time"},
        "id": {"type": "string", "format": "uuid"},
        "score": {"type": "number", "minimum": -1.5, "exclusiveMaximum": 2},
        "stars": {"type": "integer", "minimum": 1, "maximum": 5},
        "big": {"type": "integer", "exclusiveMinimum": 999},
        "temps": {"type": "array", "items": {"type": "number", "maximum": -273.15}, "maxItems": 3},
    },
}


def test_random_walks_complete_to_valid_documents():
    g = compile_schema(WALK_SCHEMA)
    rng = random.Random(7)
    done = 0
    for _ in range(25):
        doc = random_document(g, rng)
        if doc is None:
            continue
        value = json.loads(doc)
        jsonschema.validate(value, WALK_SCHEMA, format_checker=jsonschema.FormatChecker())
        for key in ("when", "id"):  # optional: checked when written
            if key in value:
                FORMAT_CHECKS[WALK_SCHEMA["properties"][key]["format"]](value[key])
        done += 1
    assert done >= 10


def test_mask_equals_feeding_every_token(smollm2_gguf):
    """Inside bounded and patterned strings and bounded numbers, the token mask gives exactly
    the tokens the automaton takes whole (the whitespace and plain-token shortcuts included)."""
    tok = _core.Tokenizer.from_gguf(smollm2_gguf)
    g = compile_schema(WALK_SCHEMA)
    doc = ('{"code":"AB-12","name":"Tom \u00e9","tag":"a x","when":"2024-05-06T07:08:09Z",'
           '"id":"123e4567-e89b-12d3-a456-426614174000","score":1.25,"stars":4,"big":1000,"temps":[-300.5')
    assert scan(g, doc.encode()) == (len(doc.encode()), False)
    cuts = (9, 11, 14, 24, 26, 30, 32, 45, 60, 75, 130, 140, 148, 157, 165, len(doc))
    assert_masks_at(tok, token_pieces(tok), [doc[:cut] for cut in cuts], g)


def test_generation_keeps_the_bounds(smollm2_gguf):
    schema = {"type": "object", "additionalProperties": False, "properties": {
        "name": {"type": "string", "pattern": "^[A-Z][a-z]+$", "maxLength": 10},
        "age": {"type": "integer", "minimum": 1, "maximum": 20},
        "weight": {"type": "number", "exclusiveMinimum": 0, "maximum": 12.5},
        "born": {"type": "string", "format": "date"},
        "motto": {"type": "string", "minLength": 3, "maxLength": 20}},
        "required": ["name", "age", "weight", "born", "motto"]}
    prompts = ["Describe a cat as JSON:", "A JSON record of a dog:", "Invent a pet. Answer in JSON."]
    with LLM.from_pretrained(smollm2_gguf, n_ctx=1024, threads=2) as llm:
        outs = llm.generate(prompts, SamplingParams(max_tokens=200, json_schema=schema))
        outs += llm.generate(prompts, SamplingParams(max_tokens=200, temperature=1.0, seed=4, json_schema=schema))
    for out in outs:
        assert out.finish_reason == "stop", out.text
        jsonschema.validate(json.loads(out.text), schema, format_checker=jsonschema.FormatChecker())
        datetime.date.fromisoformat(json.loads(out.text)["born"])


# ---- a whole output held to a pattern (vLLM's guided_regex / guided_choice) --------------------

def test_raw_output_patterns_end_where_nothing_can_follow():
    from llmasos.json_schema import compile_choice, compile_regex
    g = compile_regex(r"\d{3}-\d{4}")
    assert scan(g, b"123-4567") == (8, True) and scan(g, b"123-45678")[0] == 8 and scan(g, b"12") == (2, False)
    g = compile_choice(["yes", "yesterday", "no", 'a "quoted"\nline'])
    assert scan(g, b"yes") == (3, False)  # may end here, or go on
    for done in (b"yesterday", b"no", b'a "quoted"\nline'):
        assert scan(g, done) == (len(done), True)
    assert scan(g, b"nope")[0] == 2
    with pytest.raises(ValueError):
        compile_choice([])
    with pytest.raises(ValueError, match="only the empty output"):
        compile_regex("(a{0})")
    with pytest.raises(ValueError, match="lookaround"):
        SamplingParams(regex="(?!a)b").to_core()
    with pytest.raises(ValueError, match="one of"):
        SamplingParams(regex="a", choice=["a"]).to_core()


def test_raw_output_mask_allows_the_end_where_it_may_end(smollm2_gguf):
    from llmasos.json_schema import compile_choice
    tok = _core.Tokenizer.from_gguf(smollm2_gguf)
    pieces = token_pieces(tok)
    eog = [i for i in range(len(tok)) if tok.is_eog(i)]
    g = compile_choice(["yes", "yesterday", "no"])
    for prefix, may_end in (("", False), ("ye", False), ("yes", True), ("yester", False)):
        ids = tok.encode(prefix, False, False)
        data = prefix.encode()
        want = sorted(fed(pieces, data, scanner(g)) + (eog if may_end else []))
        assert _core.json_allowed(tok, ids, g) == want, prefix


@pytest.mark.parametrize("kind", ["pattern", "walk", "regex"])
def test_masks_step_by_step_equal_feeding_every_token(smollm2_gguf, kind):
    """One constraint through a whole document, its caches warm as in generation (a pattern
    string's masks are kept per DFA state): each mask equals feeding every token."""
    from llmasos.json_schema import compile_regex
    tok = _core.Tokenizer.from_gguf(smollm2_gguf)
    pieces = token_pieces(tok)
    eog = [i for i in range(len(tok)) if tok.is_eog(i)]
    if kind == "pattern":
        g = compile_schema(one({"type": "string", "pattern": "^[a-z ,]+$"}))
        doc = '{"x":"the cat sat on the mat, and the dog sat on the log"}'
    elif kind == "walk":
        g = compile_schema(WALK_SCHEMA)
        doc = ('{"code":"AB-1234","name":"Tom","tag":"axxb","when":"2024-05-06T07:08:09.5+01:00",'
               '"id":"123e4567-e89b-12d3-a456-426614174000","score":-1.25,"stars":4,"big":1000000,"temps":[-300]}')
    else:
        g = compile_regex(r"(yes|no|maybe)( and (yes|no|maybe))*\.?")
        doc = "maybe and no and yes and maybe."
    ids = tok.encode(doc, False, False)
    assert tok.decode(ids) == doc
    masks = _core.json_masks(tok, ids, g)
    data = b""
    for step, m in enumerate(masks):
        n, done = scan(g, data)
        assert n == len(data)
        want = fed(pieces, data, scanner(g))
        if kind == "regex" and re.fullmatch(r"(yes|no|maybe)( and (yes|no|maybe))*\.?", data.decode()) and not done:
            want = sorted(want + eog)  # it may end here (the final '.' ends it): the end tokens too
        assert m == want, (step, data)
        if step < len(ids):
            data += pieces[ids[step]]
