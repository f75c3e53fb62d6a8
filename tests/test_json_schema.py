"""Structured outputs (SamplingParams.json_schema, the server's response_format json_schema): the
compiler's refusals; the byte automaton on documents built from the schema (taken whole, every
prefix continues) and on edited ones (whatever it calls complete, json.loads reads and the
`jsonschema` package validates); the token mask against feeding every token; and generation with
the real model, alone and batched, greedy and sampled."""
import json
import random

import jsonschema
import pytest
from hypothesis import given, settings, strategies as st

from llmasos import LLM, SamplingParams, _core
from llmasos.json_schema import KEYWORDS, compile_schema
from json_reference import two_digit_exponent
from token_masks import assert_masks_at, token_pieces

# What a Pydantic model's schema looks like: $defs and $ref (recursive), Optional fields as anyOf
# with null, an enum, arrays with bounds, nested objects, annotations.
SCHEMA = {
    "title": "Cat", "type": "object",
    "properties": {
        "name": {"title": "Name", "type": "string"},
        "age": {"type": "integer"},
        "weight": {"anyOf": [{"type": "number"}, {"type": "null"}], "default": None},
        "color": {"enum": ["black", "white", "ginger", "tabby"]},
        "indoor": {"type": "boolean"},
        "toys": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
        "owner": {"$ref": "#/$defs/Person"},
        "kittens": {"type": "array", "items": {"$ref": "#/$defs/Kitten"}},
    },
    "required": ["name", "age", "color"],
    "additionalProperties": False,
    "$defs": {
        "Person": {"type": "object", "properties": {"first": {"type": "string"}, "id": {"const": 7}}},
        "Kitten": {"type": "object", "properties": {"name": {"type": "string"},
                                                    "kittens": {"type": "array", "items": {"$ref": "#/$defs/Kitten"}}}},
    },
}


def compact(v) -> bytes:
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False).encode()


GRAPH = compile_schema(SCHEMA)


def scan(data: bytes, graph=GRAPH):
    return _core.schema_scan(graph, data)


def ordered(**fields):
    """Dicts with the keys in this order (fixed_dictionaries does not keep it)."""
    return st.tuples(*fields.values()).map(lambda vals: dict(zip(fields, vals)))


text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=8)
def kittens(depth):  # nested a few levels (the automaton's stack holds 32 frames)
    inner = kittens(depth - 1) if depth > 1 else st.just([])
    return st.lists(ordered(name=text, kittens=inner), max_size=2)



cats = ordered(  # in the schema's property order, every property present
    name=text, age=st.integers(-10**6, 10**6),
    weight=st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False).filter(two_digit_exponent),
                     st.integers(-99, 99)),
    color=st.sampled_from(["black", "white", "ginger", "tabby"]), indoor=st.booleans(),
    toys=st.lists(text, max_size=3), owner=ordered(first=text, id=st.just(7)),
    kittens=kittens(3))


@settings(max_examples=150, derandomize=True, deadline=None, database=None)
@given(cat=cats)
def test_documents_built_from_the_schema_are_taken_whole(cat):
    jsonschema.validate(cat, SCHEMA)
    data = compact(cat)
    assert scan(data) == (len(data), True), data
    for cut in range(0, len(data), 5):  # proper prefixes continue and are not complete
        assert scan(data[:cut]) == (cut, False)


@settings(max_examples=300, derandomize=True, deadline=None, database=None)
@given(cat=cats, edits=st.lists(st.tuples(st.integers(0, 10**6), st.binary(max_size=3), st.integers(0, 3)),
                                min_size=1, max_size=3))
def test_what_it_calls_complete_is_valid(cat, edits):
    """Documents with bytes replaced, inserted or dropped: whatever the automaton takes whole and
    calls complete is JSON that the schema accepts."""
    data = bytearray(compact(cat))
    for at, ins, drop in edits:
        at %= len(data) + 1
        data[at:at + drop] = ins
    n, done = scan(bytes(data))
    if done:
        assert n == len(data)
        jsonschema.validate(json.loads(bytes(data)), SCHEMA)


@pytest.mark.parametrize("doc", [
    b'{"name":"x","age":1.5',                      # an integer with a fraction
    b'{"name": "x"',                                # whitespace
    b'{"age":1',                                    # a property out of order
    b'{"name":"x","age":1,"weight":"1"',            # a string where a number or null goes
    b'{"name":"x","age":1,"weight":null,"color":"grey"',
    b'{"name":"x","age":1,"weight":null,"color":"black","indoor":1',
    b'{"name":"x","age":1,"weight":null,"color":"black","indoor":true,"toys":["a","b","c","d"]',
    b'{"name":"x","age":1,"weight":null,"color":"black","indoor":true,"toys":[],"owner":{"first":"a","id":8}',
    b'{"name":"x","age":01', b'{"name":"x\x01"',   # a leading zero, a raw control character
])
def test_what_the_schema_forbids_is_cut(doc):
    n, done = scan(doc)
    assert n < len(doc) and not done


def test_enum_values_that_prefix_each_other_and_numbers_ending_in_their_parent():
    g = compile_schema({"type": "object", "properties": {"a": {"enum": [1, 10, "x", "xy"]}, "b": {"type": "number"},
                                                         "c": {"type": "array", "items": {"type": "integer"}}}})
    for doc in (b'{"a":1,"b":2,"c":[3]}', b'{"a":10,"b":-0.5e+3,"c":[]}', b'{"a":"xy","b":0,"c":[1,22]}'):
        assert scan(doc, g) == (len(doc), True), doc
    for doc in (b'{"a":100', b'{"a":"xyz"', b'{"a":1,"b":2,"c":[3,]', b'{"a":1,"b":.5'):
        assert scan(doc, g)[0] < len(doc), doc


def nested(levels):
    s = {"type": "string"}
    for _ in range(levels):
        s = {"type": "object", "properties": {"a": s}}
    return s


@pytest.mark.parametrize("schema,match", [
    ({"type": "object", "properties": {"a": {"type": "string", "pattern": "^(?=x)"}}}, "lookaround"),
    ({"type": "object", "properties": {"a": {"type": "number", "multipleOf": 0.1}}}, "multipleOf"),
    ({"type": "object", "properties": {"a": {"type": "string", "format": "idn-email"}}}, "format 'idn-email'"),
    ({"type": "object", "properties": {"a": {"oneOf": [{"type": "object", "properties": {"x": {"type": "string"}}},
                                                       {"type": "object", "properties": {"y": {"type": "string"}}}]}}},
     "discriminator"),
    ({"type": "object", "properties": {"a": {"oneOf": [{"type": "integer"}, {"type": "number"}]}}}, "discriminator"),
    ({"type": "object", "properties": {"a": {"anyOf": [{"type": "object", "properties": {f"k{i}": {"type": "string"}}}
                                                       for i in range(17)]}}}, "at most 16"),
    ({"type": "array", "items": {"type": "string"}}, "top level"),
    ({"type": "object", "properties": {"a": {"$ref": "#/$defs/Nope"}}}, "names no definition"),
    ({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["b"]}, "required"),
    ({"type": "object", "patternProperties": {"x": {"type": "string"}, "y": {"type": "string"}}}, "one pattern"),
    ({"type": "object", "properties": {"a": {"type": "string"}}, "patternProperties": {"x": {}}}, "patternProperties"),
    ({"type": "object", "additionalProperties": {"type": "string"}, "minProperties": 2}, "minProperties above 1"),
    ({"type": "object", "properties": {"a": {"type": "string"}}, "minProperties": 1}, "minProperties"),
    ({"type": "object", "properties": {"a": {"type": "string"}}, "propertyNames": {"maxLength": 3}}, "propertyNames"),
    ({"type": "object", "additionalProperties": {"type": "string"}, "propertyNames": {"type": "integer"}}, "describe strings"),
    ([1, 2], "dict"),
    (nested(40), "levels deep"), (nested(5000), "levels deep"),
    ({"type": "object", "properties": {"a": {"$ref": "#/$defs/B"}},
      "$defs": {"B": {"anyOf": [{"$ref": "#/$defs/B"}, {"type": "null"}]}}}, "anyOf inside anyOf"),
    ({"type": "object", "properties": {"a": {"type": "string", "items": {"type": "string"}}}}, "items"),
    # A constraint beside enum, const, $ref or allOf would go unenforced: refused.
    ({"type": "object", "properties": {"a": {"enum": ["ab", "abcdef"], "maxLength": 3}}}, "beside 'enum'"),
    ({"type": "object", "properties": {"a": {"type": "integer", "enum": [1, 50], "maximum": 10}}}, "beside 'enum'"),
    ({"type": "object", "properties": {"a": {"allOf": [{"type": "string"}], "maxLength": 2}}}, "beside 'allOf'"),
    ({"type": "object", "properties": {"a": {"$ref": "#/$defs/S", "minLength": 2}}, "$defs": {"S": {"type": "string"}}},
     "beside '\\$ref'"),
    # oneOf needs its discriminator required, or a document without it would match two.
    ({"type": "object", "properties": {"a": {"oneOf": [
        {"type": "object", "properties": {"kind": {"const": "a"}, "x": {"type": "string"}}, "required": ["x"]},
        {"type": "object", "properties": {"kind": {"const": "b"}, "x": {"type": "string"}}, "required": ["x"]}],
        "discriminator": {"propertyName": "kind"}}}}, "required const"),
    ({"type": "object", "properties": {"a": {"type": "integer", "minimum": 10 ** 400}}}, "no integer"),
    ({"type": "object", "properties": {"a": {"$ref": "#/$defs/S", "enum": ["a"]}}, "$defs": {"S": {"type": "string"}}},
     "beside '\\$ref'"),
    ({"type": "object", "properties": {"a": {"type": "string", "enum": ["a", None]}}}, "not of type"),
    ({"type": "object", "properties": {"a": {"const": "a", "enum": ["b"]}}}, "beside"),
    ({"type": "object", "properties": {"a": {"enum": ["a"], "anyOf": [{"type": "string"}]}}}, "beside 'enum'"),
    ({"type": "object", "properties": {"a": {"type": [["string"]], "minLength": 1}}}, "list of names"),
    ({"type": "object", "properties": {"a": {"type": {"x": 1}, "maxLength": 2}}}, "unknown or missing"),
    ({"type": "object", "properties": {"a": {"type": {"x": 1}, "const": 1}}}, "not of type"),
    ({"type": "object", "properties": {"a": {"type": [["string"]], "enum": ["a"]}}}, "not of type"),
    ({"type": "object", "properties": {"a": {"type": "string"}}, "required": [["a"]]}, "required"),
    ({"type": "object", "properties": {"a": {"type": "string", "format": ["date"]}}}, "format"),
    ({"type": "object", "properties": {"a": {"type": "string", "maxLength": 2 ** 31}}}, "2\\^31"),
])
def test_what_it_cannot_enforce_is_refused(schema, match):
    with pytest.raises(ValueError, match=match):
        compile_schema(schema)


def test_mask_equals_feeding_every_token(smollm2_gguf):
    """The token mask under a schema gives exactly the tokens whose bytes the automaton takes
    after the prefix, over the whole vocabulary."""
    tok = _core.Tokenizer.from_gguf(smollm2_gguf)
    doc = '{"name":"Tom \u00e9","age":12,"weight":null,"color":"tabby","indoor":false,"toys":["ball"]'
    assert_masks_at(tok, token_pieces(tok), [doc[:cut] for cut in (0, 1, 9, 13, 21, 30, 44, 52, 66, 85, len(doc))],
                    GRAPH)


@pytest.fixture(scope="module")
def llm(smollm2_gguf):
    with LLM.from_pretrained(smollm2_gguf, n_ctx=1024, threads=2) as m:
        yield m


PROMPT = "Describe a cat as a JSON object with its name, age, weight, color, toys, owner and kittens:"


def test_generation_follows_the_schema(llm):
    greedy = llm.generate(PROMPT, SamplingParams(max_tokens=300, json_schema=SCHEMA))[0]
    assert greedy.finish_reason == "stop"
    jsonschema.validate(json.loads(greedy.text), SCHEMA)
    prompts = [PROMPT, "A JSON cat:", "Give me a cat as JSON.", "Invent a cat. Answer in JSON."]
    # Sampled, the recursive "kittens" can nest past any token budget, and a string run on: the
    # sampled runs leave the kittens out and bound the strings.
    short = {"type": "string", "maxLength": 24}
    flat = dict(SCHEMA, properties={**{k: v for k, v in SCHEMA["properties"].items() if k != "kittens"},
                                    "name": short, "toys": {"type": "array", "items": short, "maxItems": 3}})
    sampled = SamplingParams(max_tokens=300, temperature=1.0, seed=3, json_schema=flat)
    outs = llm.generate(prompts, sampled)
    for out in outs:
        assert out.finish_reason == "stop", out.text
        jsonschema.validate(json.loads(out.text), flat)
    alone = llm.generate(prompts[2], sampled)[0]
    assert alone.text == outs[2].text  # a seeded request gives the same document batched or alone
    cut = llm.generate(PROMPT, SamplingParams(max_tokens=5, json_schema=SCHEMA))[0]
    assert cut.finish_reason == "length" and scan(cut.text.encode()) == (len(cut.text.encode()), False)


def test_bad_schema_is_a_value_error():
    with pytest.raises(ValueError, match="pattern"):
        SamplingParams(json_schema={"type": "object", "properties": {"a": {"type": "string", "pattern": "a\\1"}}}).to_core()


# ---- unions: alternatives that start alike, followed side by side --------------------------------

PETS = {  # what Pydantic writes for Union[Cat, Dog] (anyOf) and for a discriminated union (oneOf)
    "type": "object", "additionalProperties": False,
    "properties": {
        "pet": {"anyOf": [{"$ref": "#/$defs/Cat"}, {"$ref": "#/$defs/Dog"}, {"type": "null"}]},
        "tagged": {"oneOf": [{"$ref": "#/$defs/TaggedCat"}, {"$ref": "#/$defs/TaggedDog"}],
                   "discriminator": {"propertyName": "kind", "mapping": {"cat": "#/$defs/TaggedCat",
                                                                         "dog": "#/$defs/TaggedDog"}}},
        "size": {"anyOf": [{"type": "integer"}, {"type": "number", "maximum": 9.5}, {"type": "string"}]},
        "sizes": {"type": "array", "items": {"type": ["integer", "number"]}, "maxItems": 40},
    },
    "$defs": {
        "Cat": {"type": "object", "properties": {"name": {"type": "string"}, "lives": {"type": "integer"}}},
        "Dog": {"type": "object", "properties": {"name": {"type": "string"}, "bark": {"enum": ["woof", "yap"]}}},
        "TaggedCat": {"type": "object", "required": ["kind"], "properties": {"kind": {"const": "cat", "type": "string"},
                                                                             "lives": {"type": "integer"}}},
        "TaggedDog": {"type": "object", "required": ["kind"], "properties": {"kind": {"const": "dog", "type": "string"},
                                                                             "lives": {"type": "integer"}}},
    },
}
PETS_GRAPH = compile_schema(PETS)


@pytest.mark.parametrize("doc", [
    b'{"pet":{"name":"Tom","lives":9},"tagged":{"kind":"cat","lives":3},"size":5,"sizes":[]}',
    b'{"pet":{"name":"Rex","bark":"yap"},"tagged":{"kind":"dog","lives":1},"size":5.25,"sizes":[1,2.5,-3e2]}',
    b'{"pet":null,"tagged":{"kind":"dog","lives":0},"size":"big","sizes":[' + b",".join(b"7" for _ in range(40)) + b"]}",
])
def test_unions_take_every_alternative(doc):
    assert scan(doc, PETS_GRAPH) == (len(doc), True), doc
    jsonschema.validate(json.loads(doc), PETS)


@pytest.mark.parametrize("doc", [
    b'{"pet":{"name":"Tom","bark":9', b'{"pet":{"name":"Tom","lives":"9"', b'{"pet":{"bark":"yap","name"',
    b'{"pet":null,"tagged":{"kind":"cow"', b'{"pet":null,"tagged":{"kind":"cat","lives":1},"size":10.5',
])
def test_unions_cut_what_no_alternative_takes(doc):
    n, done = scan(doc, PETS_GRAPH)
    assert n < len(doc) and not done


@settings(max_examples=200, derandomize=True, deadline=None, database=None)
@given(data=st.binary(min_size=1, max_size=40), seed=st.integers(0, 10**6))
def test_union_documents_it_completes_are_valid(data, seed):
    """Valid documents with random bytes spliced in: whatever the automaton calls complete is
    valid, so no parse of a union leaks through where its alternative would refuse."""
    base = bytearray(b'{"pet":{"name":"Rex","bark":"woof"},"tagged":{"kind":"cat","lives":3},"size":1.5,"sizes":[2]}')
    at = seed % len(base)
    base[at:at + seed % 4] = data
    n, done = scan(bytes(base), PETS_GRAPH)
    if done:
        jsonschema.validate(json.loads(bytes(base)), PETS)


def test_union_mask_equals_feeding_every_token(smollm2_gguf):
    """The mask while several alternatives are open (no shortcuts then) against feeding every token."""
    tok = _core.Tokenizer.from_gguf(smollm2_gguf)
    doc = '{"pet":{"name":"Rex","bark":"yap"},"tagged":{"kind":"dog","lives":1},"size":5.25,"sizes":[1,2.5'
    assert_masks_at(tok, token_pieces(tok), [doc[:cut] for cut in (7, 8, 11, 15, 21, 26, 50, 60, 82, 85, len(doc))],
                    PETS_GRAPH)


def test_generation_of_unions(llm):
    prompts = ["Describe a pet as JSON:", "A JSON pet record:"]
    outs = llm.generate(prompts, SamplingParams(max_tokens=250, json_schema=PETS))
    outs += llm.generate(prompts, SamplingParams(max_tokens=250, temperature=1.0, seed=9, json_schema=PETS))
    for out in outs:
        if out.finish_reason == "stop":
            jsonschema.validate(json.loads(out.text), PETS)
        else:  # the 40-item array can run past the budget: then it is a prefix the automaton takes
            assert scan(out.text.encode(), PETS_GRAPH) == (len(out.text.encode()), False)
    assert any(o.finish_reason == "stop" for o in outs)


# ---- optional properties: written or left out, in the declared order -----------------------------

OPTIONAL = {"type": "object", "additionalProperties": False, "required": ["b"],
            "properties": {"a": {"type": "integer"}, "b": {"type": "string"}, "ab": {"type": "boolean"},
                           "c": {"type": "object", "properties": {"x": {"type": "integer"}}}}}
OPTIONAL_GRAPH = compile_schema(OPTIONAL)
OPTIONAL_VALUES = {"a": st.integers(-99, 99), "b": text, "ab": st.booleans(),
                   "c": st.one_of(st.just({}), st.integers(0, 9).map(lambda x: {"x": x}))}


@settings(max_examples=200, derandomize=True, deadline=None, database=None)
@given(keep=st.lists(st.booleans(), min_size=4, max_size=4), data=st.data())
def test_optional_properties_may_be_left_out(keep, data):
    doc = {k: data.draw(OPTIONAL_VALUES[k]) for k, on in zip(OPTIONAL["properties"], keep) if on}
    raw = compact(doc)
    ok = "b" in doc
    assert (scan(raw, OPTIONAL_GRAPH) == (len(raw), True)) == ok, raw
    if ok:
        jsonschema.validate(doc, OPTIONAL)
        for cut in range(len(raw)):
            assert scan(raw[:cut], OPTIONAL_GRAPH) == (cut, False)


@pytest.mark.parametrize("doc", [b'{}', b'{"a":1}', b'{"b":"x","a":1', b'{"a":1,"ab":true', b'{"b":"x",}',
                                 b'{,"b"', b'{"b":"x","c":{},"ab"', b'{"b":"x""ab"', b'{"a":1,,"b"'])
def test_optional_properties_keep_order_and_required(doc):
    n, done = scan(doc, OPTIONAL_GRAPH)
    assert n < len(doc) and not done, doc


def test_all_optional_object_may_be_empty():
    g = compile_schema({"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}})
    for doc in (b'{}', b'{"a":1}', b'{"b":2}', b'{"a":1,"b":2}'):
        assert scan(doc, g) == (len(doc), True), doc


def test_optional_properties_mask_equals_feeding_every_token(smollm2_gguf):
    tok = _core.Tokenizer.from_gguf(smollm2_gguf)
    doc = '{"a":12,"b":"hi","ab":false,"c":{"x":3}}'
    cuts = (1, 2, 3, 6, 7, 8, 12, 16, 17, 19, 27, 28, 32, 38, 39)
    assert_masks_at(tok, token_pieces(tok), [doc[:cut] for cut in cuts], OPTIONAL_GRAPH)


def test_type_lists_keep_each_types_keywords():
    g = compile_schema({"type": "object", "properties": {"a": {"type": ["integer", "null"], "minimum": 0},
                                                         "": {"type": "string", "maxLength": 1}}})
    for doc in (b'{"a":5}', b'{"a":null}', b'{"a":0,"":"x"}', b'{"":""}'):
        assert scan(doc, g) == (len(doc), True), doc
    assert scan(b'{"a":-1', g)[0] < 7


RECURSIVE = {  # Pydantic's linked list: class Node: name: str; next: Optional[Node] = None
    "$ref": "#/$defs/Node",
    "$defs": {"Node": {"type": "object", "required": ["name"], "properties": {
        "name": {"type": "string"}, "next": {"anyOf": [{"$ref": "#/$defs/Node"}, {"type": "null"}]},
        "kids": {"type": "array", "items": {"$ref": "#/$defs/Node"}, "minItems": 1}}}},
}


@pytest.mark.parametrize("link", [b',"next":', b',"kids":['])
def test_nesting_to_the_stacks_depth_never_dead_ends(link):
    """Going deeper while the automaton lets it, the document can always still be completed:
    at the stack's depth an object or a non-empty array that needs a frame is refused at its
    first byte, so null (or the end of the object) is taken instead."""
    g = compile_schema(RECURSIVE)
    data, depth = b"", 0
    while scan(data + b'{"name":"a"' + link + b"{", g)[0] == len(data) + len(b'{"name":"a"' + link) + 1:
        data += b'{"name":"a"' + link
        depth += 1
    assert depth >= 10
    rng = random.Random(len(link))
    for _ in range(2000):  # finish it: any byte the automaton takes, closing ones first
        if scan(data, g)[1]:
            break
        nxt = [b for b in range(256) if scan(data + bytes([b]), g)[0] == len(data) + 1]
        assert nxt, data[-60:]
        closing = [b for b in b'"}]n' if b in nxt]
        data += bytes([closing[0] if closing else rng.choice(nxt)])
    assert scan(data, g)[1]
    jsonschema.validate(json.loads(data), RECURSIVE)


def test_double_spaces_in_literals_are_masked_exactly(smollm2_gguf):
    """The mask's whitespace shortcut judges a run of spaces by one: not where a literal or an
    enum holds two in a row."""
    tok = _core.Tokenizer.from_gguf(smollm2_gguf)
    g = compile_schema({"type": "object", "properties": {"x": {"enum": ["a  b", "a   c"]}, "y  z": {"const": 1}}})
    assert_masks_at(tok, token_pieces(tok), ('{"x":"a', '{"x":"a ', '{"x":"a  b","y'), g)


def test_many_tagged_alternatives_switch_on_their_tag(smollm2_gguf):
    """40 objects told apart by a string const as their first property (a function call's name, a
    discriminated union's tag): one parse picks the rest by the tag, where 40 side by side would
    be past the cap."""
    alts = [{"type": "object", "required": ["name", "args"], "additionalProperties": False,
             "properties": {"name": {"const": f"f{i}"}, "args": {"type": "integer" if i % 2 else "string"}}}
            for i in range(40)]
    schema = {"type": "object", "required": ["call"], "properties": {"call": {"anyOf": alts + [{"type": "null"}]}}}
    g = compile_schema(schema)
    for doc in (b'{"call":{"name":"f7","args":3}}', b'{"call":{"name":"f12","args":"x"}}', b'{"call":null}'):
        assert scan(doc, g) == (len(doc), True), doc
        jsonschema.validate(json.loads(doc), schema)
    for doc in (b'{"call":{"name":"f7","args":"x"', b'{"call":{"name":"f40"', b'{"call":{"name":"f1","args":1,'):
        assert scan(doc, g)[0] < len(doc), doc
    tok = _core.Tokenizer.from_gguf(smollm2_gguf)
    assert_masks_at(tok, token_pieces(tok), ('{"call":{"name":', '{"call":{"name":"f1', '{"call":{"name":"f13",'), g)


def test_tagged_unions_nest_deep_and_enums_keep_their_type():
    """A switch stands in its alternatives' frame: a union of tagged objects whose rest nests as
    deep as the compiler allows compiles and completes."""
    deep = nested(26)
    alts = [{"type": "object", "required": ["tag", "v"], "properties": {"tag": {"const": t}, "v": deep}} for t in "ab"]
    g = compile_schema({"type": "object", "required": ["u"], "properties": {"u": {"anyOf": alts}}})
    doc = b'{"u":{"tag":"b","v":' + b'{"a":' * 26 + b'"x"' + b"}" * 28
    assert scan(doc, g) == (len(doc), True)
    ok = compile_schema({"type": "object", "properties": {"a": {"type": "integer", "enum": [1, 2.0]}}})
    assert scan(b'{"a":2.0}', ok) == (9, True)


# ---- fuzzing the compiler: arbitrary schemas compile or get a ValueError, and what compiles
# ---- never dead-ends ------------------------------------------------------------------------------

_KEYS = sorted(KEYWORDS | {"discriminator", "title"})
_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=True), st.text(max_size=5),
                     st.sampled_from(["string", "integer", "number", "object", "array", "boolean", "null", "date",
                                      "email", "#/$defs/A", "^[a-z]+$", "a{2,3}", "(?=x)", "[", "\\d+"]))
_VALUES = st.recursive(_SCALARS, lambda ch: st.one_of(
    st.lists(ch, max_size=3), st.dictionaries(st.sampled_from(_KEYS + ["a", "b"]), ch, max_size=4)), max_leaves=12)
_SCHEMAS = st.dictionaries(st.sampled_from(_KEYS), _VALUES, max_size=5)


@settings(max_examples=400, derandomize=True, deadline=None, database=None)
@given(s=_SCHEMAS, defs=st.one_of(st.dictionaries(st.sampled_from(["A", "B"]), _SCHEMAS, max_size=2), _VALUES))
def test_compiler_fuzz(s, defs):
    ref_a = isinstance(defs, dict) and "A" in defs
    root = {"type": "object", "properties": {"x": s, "y": {"$ref": "#/$defs/A"} if ref_a else {"type": "string"}},
            "$defs": defs}
    try:
        g = compile_schema(root)  # anything but a ValueError would be a server's 500
    except ValueError:
        return
    rng = random.Random(0)
    data = b""
    for _ in range(40):
        nxt = [b for b in range(256) if scan(data + bytes([b]), g)[0] == len(data) + 1]
        if not nxt:
            assert scan(data, g)[1], data  # only a complete document has no next byte
            return
        data += bytes([rng.choice(nxt)])
