"""Structured outputs from the schemas Pydantic writes: dicts (additionalProperties, propertyNames,
patternProperties), tuples (prefixItems), Any, formats (duration, uri, hostname, ipv6), and anyOf
alternatives the automaton cannot enforce left out (Decimal). Pydantic's own validator is the
reference: every document the automaton completes must pass it, and jsonschema too."""
import datetime
import decimal
import enum
import ipaddress
import json
import random
from typing import Any, Dict, FrozenSet, List, Literal, Optional, Set, Tuple

import jsonschema
import pydantic
import pytest
from hypothesis import given, settings, strategies as st

from llmasos import LLM, SamplingParams, _core
from llmasos.json_schema import Unsupported, compile_schema
from llmasos.regex_dfa import FORMATS, compile_pattern
from token_masks import assert_masks_at, random_document, token_pieces


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"
    BLUE = "blue"


class Point(pydantic.BaseModel):
    x: int
    y: Optional[float] = None


TYPES = {
    "dict": Dict[str, int],
    "dict_of_models": Dict[str, Point],
    "dict_literal_keys": Dict[Literal["red", "green"], int],
    "dict_pattern_keys": Dict[pydantic.constr(pattern=r"^[a-z]{1,4}$"), float],
    "dict_nested": Dict[str, Dict[str, List[bool]]],
    "tuple": Tuple[int, str, bool],
    "tuple_of_models": Tuple[Point, Optional[int]],
    "any": Any,
    "list_any": List[Any],
    "dict_any": Dict[str, Any],
    "decimal": decimal.Decimal,
    "bytes": bytes,
    "secret": pydantic.SecretStr,
    "timedelta": datetime.timedelta,
    "url": pydantic.AnyUrl,
    "http_url": pydantic.HttpUrl,
    "ip": pydantic.IPvAnyAddress,
    "ipv6": ipaddress.IPv6Address,
    "optional_dict": Optional[Dict[str, int]],
    "set_of_literals": Set[Literal["a", "b", "c", 1, True]],
    "set_of_enum": FrozenSet[Color],
    "set_of_bool": Set[bool],
    "multiple_int": pydantic.conint(ge=-50, le=50, multiple_of=7),
    "multiple_float": pydantic.confloat(gt=0, multiple_of=0.25),
    "multiple_decimal": pydantic.condecimal(multiple_of=decimal.Decimal("0.5")),
}


# Pydantic 2.14 writes a Decimal's string form as any string (2.13: a pattern of digits), while its
# validator asks for a number: there the schema alone is the reference.
LOOSE_SCHEMAS = {"decimal", "multiple_decimal"}


def model_of(tp):
    return pydantic.create_model("T", v=(tp, ...))


@pytest.mark.parametrize("name", sorted(TYPES))
def test_documents_the_automaton_completes_pass_pydantic(name):
    model = model_of(TYPES[name])
    schema = model.model_json_schema()
    g = compile_schema(schema)
    rng = random.Random(name)
    done = 0
    for _ in range(30):
        doc = random_document(g, rng, limit=300)
        if doc is None:
            continue
        if name not in LOOSE_SCHEMAS:
            model.model_validate_json(doc)  # Pydantic's own validator: the reference
        jsonschema.validate(json.loads(doc), schema, format_checker=jsonschema.FormatChecker())
        done += 1
    assert done >= 8, done


def test_dict_values_keys_and_counts_are_enforced():
    scan = _core.schema_scan
    g = compile_schema({"type": "object", "additionalProperties": {"type": "integer"}})
    assert scan(g, b'{"a":1,"b":-22}') == (15, True)
    assert scan(g, b"{}") == (2, True)
    assert scan(g, b'{"a":"x"}')[0] == 5  # a string where an integer must stand
    assert scan(g, b'{"a":1,}')[0] == 7
    g = compile_schema({"type": "object", "additionalProperties": {"type": "integer"}, "minProperties": 1,
                        "maxProperties": 2, "propertyNames": {"enum": ["a", "bb"]}})
    assert scan(g, b"{}")[0] == 1  # at least one
    assert scan(g, b'{"bb":1,"a":2}') == (14, True)
    assert scan(g, b'{"a":1,"a":2,')[0] == 12  # two at most
    assert scan(g, b'{"c":1}')[0] == 2  # a key propertyNames does not name
    g = compile_schema({"type": "object", "patternProperties": {"^x[0-9]$": {"type": "boolean"}}})
    assert scan(g, b'{"x1":true,"x2":false}') == (22, True)
    assert scan(g, b'{"y')[0] == 2
    # nothing may be written: '{}' only
    assert scan(compile_schema({"type": "object", "additionalProperties": False}), b"{}") == (2, True)
    assert scan(compile_schema({"type": "object", "maxProperties": 0}), b'{"')[0] == 1


def test_tuples_write_their_prefix():
    scan = _core.schema_scan
    one = lambda arr: {"type": "object", "properties": {"t": arr}, "required": ["t"]}  # noqa: E731
    g = compile_schema(one({"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}]}))
    assert scan(g, b'{"t":[1,"a"]}') == (13, True)
    assert scan(g, b'{"t":[1]')[0] == 7
    # maxItems cuts the prefix; minItems beyond it takes items; draft 7's list form
    g = compile_schema(one({"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}], "maxItems": 1}))
    assert scan(g, b'{"t":[1]}') == (9, True)
    g = compile_schema(one({"type": "array", "items": [{"type": "integer"}], "additionalItems": {"type": "null"},
                            "minItems": 3}))
    assert scan(g, b'{"t":[1,null,null]}') == (19, True)
    with pytest.raises(ValueError, match="more items"):
        compile_schema(one({"type": "array", "prefixItems": [{"type": "null"}], "items": False, "minItems": 2}))


def test_any_value_takes_every_json_value():
    g = compile_schema({"type": "object", "properties": {"v": {}}, "required": ["v"]})
    for value in ['"s"', "-1.5e3", "true", "null", '{"a": [1, {}]}', '[[],[1,"x"],{"k": null}]']:
        doc = b'{"v":' + value.encode() + b"}"
        assert _core.schema_scan(g, doc) == (len(doc), True), doc
    g = compile_schema({"type": "object", "properties": {"v": {"type": "array"}}, "required": ["v"]})  # any items
    assert _core.schema_scan(g, b'{"v":[1,"a",[{}]]}') == (18, True)
    with pytest.raises(ValueError, match="allows no value"):
        compile_schema({"type": "object", "properties": {"v": False}})


def test_anyof_leaves_out_alternatives_it_cannot_enforce():
    lookahead = {"type": "string", "pattern": "^(?!x)a+$"}
    g = compile_schema({"type": "object", "properties": {"v": {"anyOf": [{"type": "number"}, lookahead]}},
                        "required": ["v"]})
    assert _core.schema_scan(g, b'{"v":1.5}') == (9, True)
    assert _core.schema_scan(g, b'{"v":"')[0] == 5  # the string alternative is left out
    with pytest.raises(Unsupported, match="lookaround"):  # none left: refused, with the first reason
        compile_schema({"type": "object", "properties": {"v": {"anyOf": [lookahead, {"type": "number", "multipleOf": 0.1}]}}})
    with pytest.raises(Unsupported, match="lookaround"):  # oneOf: what is written must not match it either
        compile_schema({"type": "object", "properties": {"v": {"oneOf": [{"type": "number"}, lookahead]}}})
    # A $ref first met inside the alternative left out is compiled again where it is used later.
    defs = {"S": {"type": "object", "properties": {"s": lookahead}}, "N": {"type": "integer"}}
    g = compile_schema({"type": "object", "required": ["a", "b"], "$defs": defs, "properties": {
        "a": {"anyOf": [{"$ref": "#/$defs/S"}, {"$ref": "#/$defs/N"}]}, "b": {"$ref": "#/$defs/N"}}})
    assert _core.schema_scan(g, b'{"a":1,"b":2}') == (13, True)
    with pytest.raises(Unsupported, match="lookaround"):
        compile_schema({"type": "object", "$defs": defs, "properties": {
            "a": {"anyOf": [{"$ref": "#/$defs/S"}, {"type": "null"}]}, "b": {"$ref": "#/$defs/S"}}})


@pytest.mark.parametrize("fmt,good,bad", [
    ("duration", "P1Y2M3DT4H5M6S", "P1Y1D"), ("uri", "https://a.example.com:8080/p%20q?x=1#f", "http://1.2.3"),
    ("ipv6", "fe80::1:2", "1::2::3"), ("ipvanyaddress", "10.0.0.1", "10.0.0.256"), ("ipvanyinterface", "::", ":::"),
    ("hostname", "a-b.example", "a.b.123"),
])
def test_new_format_examples(fmt, good, bad):
    """(Random walks through every format's DFA, checked by the format's own parser, are in
    test_json_schema_bounds.py.)"""
    assert compile_pattern(FORMATS[fmt]).matches(good.encode())
    assert not compile_pattern(FORMATS[fmt]).matches(bad.encode())
    g = compile_schema({"type": "object", "properties": {"v": {"type": "string", "format": fmt}}, "required": ["v"]})
    doc = json.dumps({"v": good}).replace(" ", "").encode()
    assert _core.schema_scan(g, doc) == (len(doc), True)


def test_map_mask_equals_feeding_every_token(smollm2_gguf):
    tok = _core.Tokenizer.from_gguf(smollm2_gguf)
    g = compile_schema(model_of(Dict[str, Tuple[int, List[Any]]]).model_json_schema())
    doc = '{"v":{"first key":[12,[true,"x",{"a": [1.5]},null]],"k2":[-3,[]]}}'
    assert _core.schema_scan(g, doc.encode()) == (len(doc.encode()), True)
    cuts = (5, 6, 8, 17, 19, 22, 24, 30, 36, 40, 45, 52, 55, 60, len(doc) - 1)
    assert_masks_at(tok, token_pieces(tok), [doc[:cut] for cut in cuts], g)


def test_generation_of_pydantic_models(smollm2_gguf):
    class Inventory(pydantic.BaseModel):
        counts: Dict[pydantic.constr(max_length=12), int] = pydantic.Field(max_length=3)  # maxProperties
        where: Tuple[float, float]
        tags: List[Literal["fresh", "old"]]

    schema = Inventory.model_json_schema()
    prompts = ["Count the fruit in the basket as JSON:", "An inventory of the shop, in JSON:"]
    with LLM.from_pretrained(smollm2_gguf, n_ctx=1024, threads=2) as llm:
        greedy = llm.generate(prompts[0], SamplingParams(max_tokens=200, json_schema=schema))[0]
        outs = llm.generate(prompts, SamplingParams(max_tokens=200, temperature=0.8, seed=3, json_schema=schema))
    for out in [greedy, *outs]:
        if out.finish_reason == "stop":  # complete: it must validate (a cut one is only a prefix)
            Inventory.model_validate_json(out.text)
        assert _core.schema_scan(compile_schema(schema), out.text.encode())[0] == len(out.text.encode())
    assert greedy.finish_reason == "stop", greedy.text


@settings(max_examples=300, derandomize=True, deadline=None, database=None)
@given(m=st.one_of(st.integers(1, 10**6), st.sampled_from([0.5, 0.25, 0.125, 1.5, 2.0, 0.375])),
       lo=st.one_of(st.none(), st.integers(-10**6, 10**6)), span=st.integers(0, 10**6),
       value=st.one_of(st.integers(-2 * 10**6, 2 * 10**6), st.decimals(-10**6, 10**6, places=3)),
       t=st.sampled_from(["integer", "number"]))
def test_multiple_of_agrees_with_jsonschema(m, lo, span, value, t):
    """The automaton takes a number whole exactly when jsonschema finds it a multiple within the
    bounds (integers: no fraction; numbers: up to 6 decimals, as bounded numbers are written)."""
    prop = {"type": t, "multipleOf": m, **({"minimum": lo, "maximum": lo + span} if lo is not None else {})}
    schema = {"type": "object", "properties": {"v": prop}, "required": ["v"]}
    try:
        g = compile_schema(schema)
    except ValueError as e:
        assert "multiple" in str(e)  # no multiple within the bounds and digits
        return
    text = str(value)
    if "E" in text or "e" in text:
        return
    doc = ('{"v":' + text + "}").encode()
    want = jsonschema.Draft202012Validator(schema).is_valid(json.loads(doc)) and (t == "number" or "." not in text)
    assert (_core.schema_scan(g, doc) == (len(doc), True)) == want, (schema, text)


def test_multiple_of_and_unique_items_are_enforced():
    scan = _core.schema_scan
    one = lambda p: {"type": "object", "properties": {"v": p}, "required": ["v"]}  # noqa: E731
    g = compile_schema(one({"type": "integer", "multipleOf": 3, "minimum": -10, "maximum": 10}))
    assert [v for v in range(-12, 13) if scan(g, b'{"v":%d}' % v) == (len(b'{"v":%d}' % v), True)] == \
        [-9, -6, -3, 0, 3, 6, 9]
    assert scan(g, b'{"v":1')[0] == 5  # no multiple of 3 in [-10, 10] starts with 1
    with pytest.raises(Unsupported, match="not exact"):
        compile_schema(one({"type": "number", "multipleOf": 0.01}))
    with pytest.raises(ValueError, match="multiple"):
        compile_schema(one({"type": "integer", "multipleOf": 7, "minimum": 1, "maximum": 6}))
    g = compile_schema(one({"type": "array", "items": {"enum": ["a", "b", 1]}, "uniqueItems": True, "minItems": 2}))
    assert scan(g, b'{"v":["a",1,"b"]}') == (17, True)
    assert scan(g, b'{"v":["a","a"')[0] == 11  # the second "a"
    assert scan(g, b'{"v":["a",1,"b",')[0] == 15  # every value written: no more
    assert scan(g, b'{"v":["a"]')[0] == 9  # minItems 2
    for bad, why in [({"type": "array", "items": {"type": "string"}, "uniqueItems": True}, "only for items"),
                     ({"type": "array", "items": {"enum": [1, 1.0]}, "uniqueItems": True}, "equal"),
                     ({"type": "array", "items": {"enum": [1]}, "uniqueItems": True, "minItems": 2}, "more unique")]:
        with pytest.raises(ValueError, match=why):
            compile_schema(one(bad))
    # at most one item is always unique
    compile_schema(one({"type": "array", "items": {"type": "string"}, "uniqueItems": True, "maxItems": 1}))


def test_review_edges():
    """Each once let through a document the schema (or Pydantic) refuses, or refused a valid one."""
    scan = _core.schema_scan
    one = lambda p: {"type": "object", "properties": {"v": p}, "required": ["v"]}  # noqa: E731
    with pytest.raises(Unsupported, match="tuple"):  # [1, 1] is no set
        compile_schema(one({"type": "array", "prefixItems": [{"type": "integer"}] * 2, "uniqueItems": True}))
    # Under a oneOf nothing is left out: "a" would match both alternatives.
    with pytest.raises(Unsupported, match="lookaround"):
        compile_schema(one({"oneOf": [{"type": "string"}, {"type": ["string", "null"], "pattern": "(?=a)"}]}))
    # An integer over a float divisor is divided as a double: exact up to 2^53 only.
    g = compile_schema(one({"type": "integer", "multipleOf": 3.0}))
    assert scan(g, b'{"v":9007199254740993}')[1] is False and scan(g, b'{"v":9007199254740990}')[1]
    g = compile_schema(one({"type": "integer", "multipleOf": 10**18}))  # only 0 has few enough digits
    assert scan(g, b'{"v":0}') == (7, True) and scan(g, b'{"v":1')[0] == 5
    g = compile_schema(one({"type": "string", "format": "uri"}))
    assert scan(g, b'{"v":"http://xn--')[0] == 16  # no reserved '--' label
    g = compile_schema(model_of(Dict[pydantic.constr(pattern=r"^[a-z]+$", max_length=3), int]).model_json_schema())
    assert scan(g, b'{"v":{"abc":1}}') == (15, True) and scan(g, b'{"v":{"abcd')[0] == 10
    g = compile_schema({"type": "object", "propertyNames": False})
    assert scan(g, b"{}") == (2, True)


def test_surrogate_escapes_come_in_pairs(smollm2_gguf):
    """A lone UTF-16 surrogate escape is JSON that Pydantic refuses ('lone leading surrogate'):
    JSON mode, schema strings and map keys take a high one only with its low one right after."""
    schema = model_of(Dict[str, str]).model_json_schema()
    g = compile_schema(schema)
    pair = b'{"v":{"\\ud83d\\ude00":"x\\uD83D\\uDE00"}}'
    assert _core.schema_scan(g, pair) == (len(pair), True) and _core.json_scan(pair) == (len(pair), True)
    model_of(Dict[str, str]).model_validate_json(pair)
    for lone in [b'{"v":{"\\ud83d"', b'{"v":{"a":"\\ude', b'{"v":{"a":"\\ud83dx', b'{"v":{"a":"\\ud83d\\n']:
        assert _core.schema_scan(g, lone)[0] == len(lone) - 1, lone
        assert _core.json_scan(lone)[0] == len(lone) - 1, lone
    tok = _core.Tokenizer.from_gguf(smollm2_gguf)
    prefixes = ['{"v":{"a\\ud83d', '{"v":{"a":"b\\ud83d\\', '{"v":{"a":"b\\ud83d\\uDE']
    assert_masks_at(tok, token_pieces(tok), prefixes, g)
    assert_masks_at(tok, token_pieces(tok), prefixes, None)
