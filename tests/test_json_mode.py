"""JSON mode (SamplingParams.json_object, the server's response_format json_object): the byte
automaton against Python's json module (every object json.dumps writes is accepted and complete
only at its end; whatever it calls complete, json.loads reads as a dict; what JSON forbids it
refuses), then generation with the real model, alone and batched, greedy and sampled."""
import json

import pytest
from hypothesis import given, settings, strategies as st

from json_reference import classify, two_digit_exponent
from token_masks import assert_masks_at, token_pieces
from llmasos import LLM, SamplingParams, _core

# Values json.dumps writes within the automaton's limits (20 integer digits, 2 exponent digits,
# nesting <= 64).
text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
leaf = st.one_of(st.none(), st.booleans(), st.integers(-10**19, 10**19),
                 st.floats(allow_nan=False, allow_infinity=False).filter(two_digit_exponent), text)
value = st.recursive(leaf, lambda c: st.one_of(st.lists(c, max_size=4), st.dictionaries(text, c, max_size=4)),
                     max_leaves=20)
objects = st.dictionaries(text, value, max_size=5)
layouts = st.fixed_dictionaries({"indent": st.sampled_from([None, 0, 1, 2, 4, "\t"]),
                                 "ensure_ascii": st.booleans(),
                                 "separators": st.sampled_from([None, (",", ":"), (", ", ": "), (" ,", " : ")])})


def scan(data: bytes):
    return _core.json_scan(data)


def depth(v):
    return 1 + max((depth(x) for x in (v.values() if isinstance(v, dict) else v)), default=0) \
        if isinstance(v, (dict, list)) else 0


@settings(max_examples=600, derandomize=True, deadline=None, database=None)
@given(obj=objects, layout=layouts)
def test_every_dumped_object_is_accepted(obj, layout):
    data = json.dumps(obj, **layout).encode()
    if layout["indent"] is not None and 1 + 4 * depth(obj) > 48:
        return  # deeper than the whitespace-run limit allows at that indent
    n, done = scan(data)
    assert (n, done) == (len(data), True), data[:n + 10]
    for cut in range(len(data)):  # every proper prefix continues, none is complete
        assert scan(data[:cut]) == (cut, False)


def automaton(data: bytes) -> str:
    n, done = scan(data)
    return "complete" if done else "prefix" if n == len(data) else "bad"


@settings(max_examples=1500, derandomize=True, deadline=None, database=None)
@given(obj=objects, layout=layouts, edits=st.lists(st.tuples(st.integers(0, 10**6), st.binary(max_size=3),
                                                             st.integers(0, 3)), min_size=1, max_size=4),
       cuts=st.lists(st.integers(0, 10**6), max_size=6))
def test_agrees_with_a_reference_reader(obj, layout, edits, cuts):
    """Objects with bytes replaced, inserted or dropped, and prefixes of them: the automaton and an
    independent reader (tests/json_reference.py) call each complete, a valid prefix or bad alike,
    and what both call complete json.loads reads as a dict."""
    data = bytearray(json.dumps(obj, **layout).encode())
    for at, ins, drop in edits:
        at %= len(data) + 1
        data[at:at + drop] = ins
    data = bytes(data)
    for piece in [data] + [data[:c % (len(data) + 1)] for c in cuts]:
        want = classify(piece)
        assert automaton(piece) == want, piece
        if want == "complete":
            assert isinstance(json.loads(piece.decode("utf-8")), dict)


@pytest.mark.parametrize("bad", [
    b"[1]", b'"x"', b"1", b"null", b" x", b'{"a":1,}', b'{"a" 1}', b'{a:1}', b"{'a':1}",
    b'{"a":01}', b'{"a":1.}', b'{"a":.5}', b'{"a":-}', b'{"a":1e}', b'{"a":+1}', b'{"a":NaN}',
    b'{"a":Infinity}', b'{"a":tru}x', b'{"a":"\n"}', b'{"a":"\\x"}', b'{"a":"\\u12g4"}',
    b'{"a":"\xc0\x80"}', b'{"a":"\xed\xa0\x80"}', b'{"a":"\xf4\x90\x80\x80"}', b'{"a":"\xe2\x82"}',
    b'{"a":"\x80"}', b'{"a":1}{', b'{"a":1} ', b'{"a":[1,]}', b'{"a":[1}', b'{"a":{]}', b'{,}',
    b'{"a":' + b"1" * 21 + b"}", b'{"a":1e1234}', b'{"a":1e100}', b"{" + b" " * 49 + b"}",
    # UTF-16 surrogate escapes only in pairs: strict parsers (Pydantic's) refuse a lone one
    b'{"a":"\\ud800"}', b'{"a":"\\udc00"}', b'{"a":"\\ud800a"}', b'{"a":"\\ud800\\u0041"}', b'{"a":"\\ud800\\n"}',
    b'{"a":"\\udbff\\ud800"}',
    b'{"a":' + b"[" * 64 + b"]" * 64 + b"}",
])
def test_refuses_what_json_forbids(bad):
    n, done = scan(bad)
    assert not done and n < len(bad)


def test_accepts_edges():
    for good in [b"{}", b' \n{ } ', b'{"":""}', b'{"a":[]}', b'{"a":[[],{}]}', b'{"a":-0.0e+00}',
                 b'{"a":"\\u00e9\\"\\\\\\/\\b\\f\\n\\r\\t"}', '{"é":"日本語 🎉"}'.encode(),
                 b'{"a":"\\ud83d\\ude00\\uDBFF\\uDFFFx\\uE000"}', b'{"a":-1e99,"b":1E-99}',
                 b'{"a":' + b"9" * 20 + b"}", b"{" + b" " * 48 + b"}", b'{"a":' + b"[" * 63 + b"]" * 63 + b"}"]:
        good = good.rstrip()
        assert scan(good) == (len(good), True), good


# ---- generation with the real model ----------------------------------------------------------

@pytest.fixture(scope="module")
def llm(smollm2_gguf):
    with LLM.from_pretrained(smollm2_gguf, n_ctx=1024, threads=2) as m:
        yield m


MESSAGES = [{"role": "user", "content": "Describe a cat as a JSON object with name, age and color."}]


def check(out):
    """A finished output is one JSON object; a truncated one is a prefix of one."""
    n, done = scan(out.text.encode())
    if out.finish_reason == "stop":
        assert done and isinstance(json.loads(out.text), dict), out.text
    else:
        assert n == len(out.text.encode()) and not done, out.text


def test_chat_json_mode_gives_an_object(llm):
    free = llm.chat(MESSAGES, SamplingParams(max_tokens=60))
    assert not free.text.lstrip().startswith("{")  # this model wraps JSON in a code fence
    out = llm.chat(MESSAGES, SamplingParams(max_tokens=200, json_object=True))
    assert out.finish_reason == "stop"
    assert set(json.loads(out.text)) >= {"name", "age", "color"}


def test_sampled_json_alone_and_batched(llm):
    """Seeded sampling at several temperatures: every output is an object (or, cut by
    max_tokens, the start of one), and the engine's batch gives each request's tokens alone."""
    ids = llm.chat_prompt_ids(MESSAGES)
    prompts = [ids, llm.tokenize("A JSON object about a dog:"), llm.tokenize("{")]
    params = [SamplingParams(max_tokens=48, temperature=t, seed=s, json_object=True, logprobs=1 if s % 2 else None)
              for t, s in [(0.7, 1), (1.0, 2), (1.5, 3), (1.0, 4), (2.0, 5)]]
    jobs = [(p, sp) for p in prompts for sp in params]
    batched = [llm.generate([p for p, _ in jobs[i::len(params)]], jobs[i][1]) for i in range(len(params))]
    stops = 0
    for i, sp in enumerate(params):
        for j, p in enumerate(prompts):
            alone = llm._run(list(p), sp)
            check(alone)
            assert batched[i][j].token_ids == alone.token_ids
            stops += alone.finish_reason == "stop"
    assert stops >= 5  # most end by closing their object


def test_tiny_temperatures_never_draw_a_masked_token(llm):
    """exp(logit / T) overflowed for T = 1e-37 (inf - inf: NaN weights), and the draw fell back to
    token 0, <|endoftext|>, which the mask had ruled out."""
    for t in (1e-37, 1e-30, 1e-8):
        out = llm.chat(MESSAGES, SamplingParams(max_tokens=40, temperature=t, seed=1, json_object=True,
                                                ignore_eos=True))
        check(out)
        assert 0 not in out.token_ids


def test_json_mode_ends_at_the_object_even_with_ignore_eos(llm):
    out = llm.chat(MESSAGES, SamplingParams(max_tokens=200, json_object=True, ignore_eos=True))
    assert out.finish_reason == "stop" and isinstance(json.loads(out.text), dict)


def test_json_object_must_be_a_bool():
    with pytest.raises(ValueError, match="json_object"):
        SamplingParams(json_object="yes").to_core()


PREFIXES = ['', ' ', '{', '{ ', '{"na', '{"name"', '{"name" ', '{"name":', '{"name": "Fel', '{"a": "x\\',
            '{"a": "x\\u00', '{"a": "x\\\\', '{"a": 1', '{"a": -', '{"a": 1.5e', '{"a": tr', '{"a": [', '{"a": [1, ',
            '{"a": [1]', '{"a": {}', '{"a": {"b": null}}', '{"a":' + ' ' * 47, '{"a": "caf\u00e9 \U0001f389']


def test_mask_equals_feeding_every_token(smollm2_gguf):
    """The mask's shortcuts (first byte, plain string content, leading whitespace) give exactly
    the tokens whose bytes the automaton takes after the prefix, over the whole vocabulary."""
    tok = _core.Tokenizer.from_gguf(smollm2_gguf)
    # every prefix but a complete object continues
    assert_masks_at(tok, token_pieces(tok), PREFIXES, complete_ok=True)
