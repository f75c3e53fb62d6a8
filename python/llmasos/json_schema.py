"""Structured outputs: a JSON schema (OpenAI's response_format {"type": "json_schema"}, or
SamplingParams.json_schema) compiled into the node graph that the C++ automaton runs
(csrc/engine/json_schema.h). The output is compact JSON (no whitespace) that the schema accepts:
objects carry their declared properties in the declared order, the required ones always and the
others when the model writes them, so every "required" holds and nothing undeclared appears.

Supported: type (a name or a list); properties / required / additionalProperties; objects without
declared properties as maps (Dict[str, X]: additionalProperties as a schema, propertyNames,
patternProperties with one pattern, maxProperties, minProperties up to 1); items / minItems /
maxItems, and prefixItems (Tuple[int, str]; draft 7's items list); enum, const; anyOf / oneOf
(alternatives followed side by side until the output tells them apart: Union[Cat, Dog],
Optional[...], an integer or a number, ...); a single-element allOf; $ref into $defs / definitions
(recursion included); the empty schema (typing.Any: any JSON value); and the annotations (title,
description, default, ...). Strings take minLength / maxLength, pattern (regex_dfa.py says which
regular expressions) or format (date, time, date-time, duration, uuid, ipv4, ipv6, hostname, uri,
email; binary and password say only "a string"); numbers and integers take minimum / maximum /
exclusiveMinimum / exclusiveMaximum, and are then written without exponent, with at most 15
significant digits (numbers: up to 6 decimals).

A keyword that would constrain the output in a way the automaton does not enforce (uniqueItems,
contentSchema, a lookahead in a pattern, ...) is refused with an Unsupported error (a ValueError)
that names it, rather than ignored; except in an anyOf, where the alternative is left out and the
output matches another (Pydantic's Decimal, a number or a patterned string, is written as a number).
"""
from __future__ import annotations

import json
import time
from typing import Any, Dict, List, Optional, Set

from ._core_loader import _core
from .regex_dfa import compile_pattern, escape

from .json_schema_values import (ANNOTATIONS, ANY_OF, ARRAY, BOUND_KEYS, ENUM, INTEGER, LITERAL, MAP,
                                 MAX_OPTIONS, NUMBER, NUMBER_START, OBJECT, PROPS, RAW, SEQ, STRING, STRING_KEYS,
                                 SWITCH, Unsupported, ValueNodes, has_type, compact_json, set_dfa)

MAX_BRANCHES = 16  # SchemaRun::kMaxBranches: anyOf alternatives open at once
PATTERN_SECONDS = 2.0  # compile time allowed a schema's patterns (a request's body can hold many)
# Schemas nested deeper than the automaton's stack (SchemaState::kMaxDepth frames) could never be
# completed; refused here, before Python's own recursion limit turns them into a crash.
MAX_NESTING = 32

OBJECT_KEYS = ("properties", "required", "additionalProperties", "patternProperties", "propertyNames", "minProperties",
               "maxProperties")
ARRAY_KEYS = ("items", "prefixItems", "additionalItems", "minItems", "maxItems", "uniqueItems")
KEYWORDS = {"type", "enum", "const", "anyOf", "oneOf", "allOf", "$ref", *OBJECT_KEYS, *ARRAY_KEYS, *STRING_KEYS,
            *BOUND_KEYS}
OWN_KEYS = {"object": OBJECT_KEYS, "array": ARRAY_KEYS, "string": STRING_KEYS, "number": BOUND_KEYS,
            "integer": BOUND_KEYS}
CONSTRAINTS = {k for keys in OWN_KEYS.values() for k in keys}


def json_equal(a, b) -> bool:
    """Equal as JSON values, as uniqueItems compares them: 1 == 1.0, but true != 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    return a == b


class _Compiler(ValueNodes):
    def __init__(self, root: Dict[str, Any], leave_out: bool):
        self.root = root
        self.leave_out = leave_out  # anyOf alternatives that cannot be enforced are left out
        self.nodes: List[Any] = []
        self.refs: Dict[str, int] = {}
        self.nesting = 0
        self.deadline = time.monotonic() + PATTERN_SECONDS  # for all the schema's patterns together
        self.any_node: Optional[int] = None

    def new(self, kind, text="", options=(), children=(), min_items=0, max_items=-1, into=None) -> int:
        n = _core.SchemaNode()
        n.kind, n.text, n.options, n.children = kind, text, list(options), list(children)
        n.min_items, n.max_items = min_items, max_items
        if into is None:
            self.nodes.append(n)
            return len(self.nodes) - 1
        self.nodes[into] = n
        return into

    def first_bytes(self, i: int, seen: Optional[Set[int]] = None) -> Set[str]:
        n = self.nodes[i]
        if n.kind == LITERAL:
            return {n.text[0]}
        if n.kind in (ENUM, SWITCH):
            return {o[0] for o in n.options}
        if n.kind == STRING:
            return {'"'}
        if n.kind in (NUMBER, INTEGER):
            return set(NUMBER_START)
        if n.kind == ARRAY:
            return {"["}
        if n.kind in (OBJECT, PROPS, MAP):
            return {"{"}
        seen = seen or set()
        if i in seen:
            return set()
        seen.add(i)
        if n.kind == SEQ:
            return self.first_bytes(n.children[0], seen)
        out: Set[str] = set()
        for c in n.children:
            out |= self.first_bytes(c, seen)
        return out

    def node(self, s, path: str, into: Optional[int] = None) -> int:
        if self.nesting >= MAX_NESTING:
            raise Unsupported(f"json_schema {path}: nested more than {MAX_NESTING} levels deep")
        self.nesting += 1
        try:
            return self.one_node(s, path, into)
        finally:
            self.nesting -= 1

    def one_node(self, s, path: str, into: Optional[int]) -> int:
        if s is False:
            raise ValueError(f"json_schema {path}: the schema false allows no value")
        if s is True or (isinstance(s, dict) and not set(s) - ANNOTATIONS):  # no constraint at all (typing.Any)
            return self.any_value(into)
        if not isinstance(s, dict):
            raise ValueError(f"json_schema {path}: a schema must be an object, got {s!r}")
        unknown = sorted(set(s) - KEYWORDS - ANNOTATIONS)
        if unknown:
            raise Unsupported(f"json_schema {path}: unsupported keyword(s) {', '.join(unknown)}")
        for key in ("$ref", "const", "enum", "allOf"):  # these stand alone: anything beside one is refused
            if key not in s:
                continue
            beside = sorted(k for k in s if k != key and k not in ANNOTATIONS and not (k == "type" and key in ("const", "enum")))
            if beside:
                raise Unsupported(f"json_schema {path}: '{beside[0]}' beside '{key}' is not supported")
            if "type" in s:  # beside enum / const: every value must have the type, as the schema asks
                values = [s["const"]] if key == "const" else s["enum"] if isinstance(s["enum"], list) else []
                types = s["type"] if isinstance(s["type"], list) else [s["type"]]
                wrong = [v for v in values if not any(has_type(v, t) for t in types)]
                if wrong:
                    raise ValueError(f"json_schema {path}: the value {wrong[0]!r} is not of type {s['type']!r}")
        if "$ref" in s:
            return self.ref(s["$ref"], path, into)
        if "const" in s:
            return self.enum([s["const"]], path, into)
        if "enum" in s:
            if not isinstance(s["enum"], list) or not s["enum"]:
                raise ValueError(f"json_schema {path}: 'enum' must be a non-empty list")
            return self.enum(s["enum"], path, into)
        for key in ("anyOf", "oneOf"):
            if key in s:
                alts = s[key]
                if not isinstance(alts, list) or not alts:
                    raise ValueError(f"json_schema {path}: '{key}' must be a non-empty list")
                rest = {k: v for k, v in s.items() if k != key and k not in ANNOTATIONS}
                if rest:
                    raise Unsupported(f"json_schema {path}: '{key}' beside {', '.join(sorted(rest))} is not supported")
                exclusive = (alts, s.get("discriminator")) if key == "oneOf" else None
                return self.any_of([(a, f"{path}/{key}/{j}") for j, a in enumerate(alts)], path, into, exclusive)
        if "allOf" in s:
            if not isinstance(s["allOf"], list) or len(s["allOf"]) != 1:
                raise Unsupported(f"json_schema {path}: only an 'allOf' of one schema is supported")
            return self.node(s["allOf"][0], f"{path}/allOf/0", into)
        t = s.get("type")
        if t is None and "properties" in s:
            t = "object"
        if isinstance(t, list):
            if not t or not all(isinstance(one, str) for one in t):
                raise ValueError(f"json_schema {path}: 'type' must be a name or a non-empty list of names")
            alts = [({k: v for k, v in s.items() if k not in CONSTRAINTS or k in OWN_KEYS.get(one, ())} | {"type": one},
                     f"{path}(type {one})") for one in t]
            return self.any_of(alts, path, into)
        return self.typed(t, s, path, into)

    def typed(self, t, s, path, into) -> int:
        if not isinstance(t, str):
            raise ValueError(f"json_schema {path}: unknown or missing 'type' {t!r}")
        bad = sorted(k for k in s if k in CONSTRAINTS and k not in OWN_KEYS.get(t, ()))
        if bad:
            raise Unsupported(f"json_schema {path}: '{bad[0]}' is not supported for type {t}")
        if t == "object":
            props = s.get("properties") or {}
            if not isinstance(props, dict):
                raise ValueError(f"json_schema {path}: 'properties' must be an object")
            required = s.get("required") or []
            if not isinstance(required, list) or any(not isinstance(r, str) or r not in props for r in required):
                raise ValueError(f"json_schema {path}: 'required' names a property that 'properties' does not")
            if not props:
                return self.map(s, path, into)
            for key in ("propertyNames", "patternProperties"):
                if key in s:
                    raise Unsupported(f"json_schema {path}: '{key}' beside 'properties' is not supported")
            # Only declared properties are written (so additionalProperties always holds): the
            # counts hold when the required ones are enough and all of them not too many.
            lo, hi = self.count_bounds(s, "minProperties", "maxProperties", path)
            if lo > len(required) or (hi >= 0 and hi < len(props)):
                raise Unsupported(f"json_schema {path}: minProperties / maxProperties beside 'properties' are "
                                  "supported only where the required properties meet them and all of them fit")
            slot = self.new(LITERAL, text="?", into=into)  # reserved: $ref recursion may point here
            if set(required) != set(props) and len(props) <= MAX_OPTIONS:
                # Optional properties may be left out: the automaton's props node.
                values = [self.node(sub, f"{path}/properties/{key}") for key, sub in props.items()]
                n = self.new(PROPS, options=[compact_json(key) + ":" for key in props], children=values, into=slot)
                self.nodes[n].required = [int(key in required) for key in props]
                return n
            children = []
            for j, (key, sub) in enumerate(props.items()):
                children.append(self.new(LITERAL, text=("{" if j == 0 else ",") + compact_json(key) + ":"))
                children.append(self.node(sub, f"{path}/properties/{key}"))
            children.append(self.new(LITERAL, text="}"))
            return self.new(SEQ, children=children, into=slot)
        if t == "array":
            lo, hi = self.count_bounds(s, "minItems", "maxItems", path)
            if "prefixItems" in s or isinstance(s.get("items"), list):
                return self.tuple(s, lo, hi, path, into)
            if "additionalItems" in s:
                raise ValueError(f"json_schema {path}: 'additionalItems' needs 'items' as a list")
            slot = self.new(LITERAL, text="?", into=into)
            item = self.node(s.get("items", True), f"{path}/items")
            n = self.new(ARRAY, children=[item], min_items=lo, max_items=hi, into=slot)
            unique = s.get("uniqueItems", False)
            if not isinstance(unique, bool):
                raise ValueError(f"json_schema {path}: 'uniqueItems' must be a boolean")
            if unique and hi != 0 and hi != 1:  # (one item at most is always unique)
                self.unique_items(n, path)
            return n
        if t == "string":
            return self.string(s, path, into)
        if t in ("number", "integer"):
            return self.number(t, s, path, into)
        if t == "boolean":
            return self.new(ENUM, options=["true", "false"], into=into)
        if t == "null":
            return self.new(LITERAL, text="null", into=into)
        raise ValueError(f"json_schema {path}: unknown or missing 'type' {t!r}")

    def unique_items(self, n, path) -> None:
        """uniqueItems (Set[Literal[...]], Set[bool], a set of an Enum): the automaton keeps which
        of the item enum's values were written, so items must be an enum of values no two of
        which are equal as JSON (1 and 1.0 are). Sets of free strings or numbers would need
        every item remembered: refused."""
        node = self.nodes[n]
        item = self.nodes[node.children[0]]
        if item.kind != ENUM:
            raise Unsupported(f"json_schema {path}: uniqueItems is supported only for items that are an enum "
                              "(Set[Literal[...]], a set of an Enum, Set[bool])")
        values = [json.loads(o) for o in item.options]
        if any(json_equal(a, b) for i, a in enumerate(values) for b in values[:i]):
            raise Unsupported(f"json_schema {path}: uniqueItems over an enum with values equal as JSON")
        if node.min_items > len(values):
            raise ValueError(f"json_schema {path}: minItems asks for more unique items than the enum has values")
        node.unique = True

    def any_value(self, into) -> int:
        """Any JSON value (an empty schema, typing.Any): one shared anyOf of every type, its arrays'
        items itself again; objects are JSON mode's free objects."""
        if self.any_node is None:
            slot = self.new(LITERAL, text="?")
            self.any_node = slot
            kinds = [self.new(STRING), self.new(NUMBER), self.new(ENUM, options=["true", "false", "null"]),
                     self.new(OBJECT), self.new(ARRAY, children=[slot])]
            self.new(ANY_OF, children=kinds, into=slot)
        if into is None:
            return self.any_node
        self.nodes[into] = self.nodes[self.any_node]
        return into

    def map(self, s, path, into) -> int:
        """An object without declared properties: any keys (propertyNames' strings, if given), each
        value under additionalProperties (Dict[str, X]); or, with one patternProperties entry, keys
        that match it with its values (Dict[constr(pattern=...), X]); a free object where nothing
        constrains it."""
        extra = s.get("additionalProperties", True)
        names = s.get("propertyNames", True)
        if "patternProperties" in s:
            pp = s["patternProperties"]
            # (Pydantic's Dict[constr(pattern=..., max_length=...), X] puts the length in propertyNames.)
            lengths = names if isinstance(names, dict) and set(names) <= {"minLength", "maxLength", "type"} | ANNOTATIONS \
                and names.get("type", "string") == "string" else None
            if not isinstance(pp, dict) or len(pp) != 1 or (names is not True and lengths is None):
                raise Unsupported(f"json_schema {path}: 'patternProperties' is supported with one pattern, "
                                  "without 'properties', and 'propertyNames' only for lengths")
            (pattern, extra), = pp.items()
            names = {**(lengths or {}), "type": "string", "pattern": pattern}
        lo, hi = self.count_bounds(s, "minProperties", "maxProperties", path)
        if lo > 1:  # a key written twice is one property once parsed: two entries need not make two
            raise Unsupported(f"json_schema {path}: minProperties above 1 is supported only with 'properties'")
        if extra is False or hi == 0 or names is False:
            if lo > 0:
                raise ValueError(f"json_schema {path}: no property is allowed, yet minProperties asks for one")
            return self.new(LITERAL, text="{}", into=into)
        free = extra is True or (isinstance(extra, dict) and not set(extra) - ANNOTATIONS)
        if free and names is True and lo == 0 and hi < 0:
            return self.new(OBJECT, into=into)
        slot = self.new(LITERAL, text="?", into=into)
        if isinstance(names, dict) and not any(k in names for k in ("type", "enum", "const", "$ref", "anyOf", "oneOf", "allOf")):
            names = {**names, "type": "string"}  # keys are strings: what propertyNames constrains is one
        key = self.new(STRING) if names is True else self.node(names, f"{path}/propertyNames")
        k = self.nodes[key]
        if not (k.kind == STRING or (k.kind == ENUM and all(o.startswith('"') for o in k.options))):
            raise Unsupported(f"json_schema {path}: 'propertyNames' must describe strings (a string schema, or an "
                              "enum or const of strings)")
        value = self.node(extra, f"{path}/additionalProperties")
        return self.new(MAP, children=[key, value], min_items=lo, max_items=hi, into=slot)

    def tuple(self, s, lo, hi, path, into) -> int:
        """prefixItems (or draft 7's items as a list), Tuple[int, str]: the first items each under
        its own schema, then any more under items (additionalItems). Exactly as many as minItems
        asks beyond the prefix are written, and the prefix as far as maxItems allows."""
        prefix = s["prefixItems"] if "prefixItems" in s else s["items"]
        rest = s.get("additionalItems", True) if "prefixItems" not in s else s.get("items", True)
        if "prefixItems" in s and "additionalItems" in s:
            raise ValueError(f"json_schema {path}: 'additionalItems' goes with 'items' as a list, not 'prefixItems'")
        if not isinstance(prefix, list) or not prefix:
            raise ValueError(f"json_schema {path}: 'prefixItems' must be a non-empty list of schemas")
        count = len(prefix) if hi < 0 else min(len(prefix), hi)
        count = max(count, lo)
        if s.get("uniqueItems") is True and count > 1:
            raise Unsupported(f"json_schema {path}: uniqueItems on a tuple (prefixItems) is not supported")
        if count > len(prefix) and rest is False:
            raise ValueError(f"json_schema {path}: minItems asks for more items than 'prefixItems' allows")
        if count == 0:
            return self.new(LITERAL, text="[]", into=into)
        slot = self.new(LITERAL, text="?", into=into)
        children = []
        for j in range(count):
            children.append(self.new(LITERAL, text="[" if j == 0 else ","))
            sub, where = (prefix[j], f"{path}/prefixItems/{j}") if j < len(prefix) else (rest, f"{path}/items")
            children.append(self.node(sub, where))
        children.append(self.new(LITERAL, text="]"))
        return self.new(SEQ, children=children, into=slot)

    def definition(self, where, name):
        """root[where][name] ($defs or definitions), or None."""
        defs = self.root.get(where)
        return defs.get(name) if isinstance(defs, dict) else None

    def resolve(self, s):
        while isinstance(s, dict) and isinstance(s.get("$ref"), str) and s["$ref"].count("/") == 2:
            s = self.definition(*s["$ref"].split("/")[1:])
        return s

    def check_exclusive(self, alts, discriminator, path):
        """oneOf asks that a document match exactly one alternative. Alternatives that start
        alike can both match, so they need a discriminator: a property that every alternative
        declares as a const (or enum) of its own values (Pydantic's discriminated unions)."""
        prop = discriminator.get("propertyName") if isinstance(discriminator, dict) else None
        prop = prop if isinstance(prop, str) else None
        seen = set()
        for a in alts:
            a = self.resolve(a)
            sub = self.resolve(((a or {}).get("properties") or {}).get(prop)) if prop else None
            values = [sub["const"]] if isinstance(sub, dict) and "const" in sub else \
                (sub.get("enum") if isinstance(sub, dict) else None)
            if not isinstance(values, list) or not values or prop not in ((a or {}).get("required") or []):
                raise ValueError(f"json_schema {path}: 'oneOf' alternatives that can start alike need a "
                                 "'discriminator' property that each declares as a required const")
            keys = {compact_json(v) for v in values}
            if keys & seen:
                raise ValueError(f"json_schema {path}: two 'oneOf' alternatives share a discriminator value")
            seen |= keys

    def any_of(self, alts, path, into, exclusive=None) -> int:
        slot = self.new(LITERAL, text="?", into=into)
        children: List[int] = []
        first_error = None
        leave_out = self.leave_out
        for a, p in alts:
            # anyOf: an alternative the automaton cannot enforce is left out, the output then
            # matching another (Decimal's number-or-patterned-string is written as a number).
            # Not under a oneOf, not even deeper: what is written must also not match the one
            # left out, and oneOf's exclusivity is judged on whole alternatives.
            saved = (len(self.nodes), dict(self.refs), self.any_node)
            self.leave_out = leave_out and not exclusive
            try:
                c = self.node(a, p)
            except Unsupported as e:
                if not self.leave_out:
                    self.leave_out = leave_out
                    raise
                del self.nodes[saved[0]:]
                self.refs, self.any_node = saved[1], saved[2]
                first_error = first_error or e
                continue
            n = self.nodes[c]
            children.extend(n.children if n.kind == ANY_OF else [c])  # flattened
        self.leave_out = leave_out
        if not children:
            raise first_error
        # Alternatives that start alike are followed side by side (the automaton's parses), at
        # most MAX_BRANCHES of them at once.
        firsts = [self.first_bytes(c) for c in children]
        if exclusive and sum(len(f) for f in firsts) != len(set().union(*firsts)):
            self.check_exclusive(*exclusive, path)
        children = self.switched(children)
        if len(children) == 1:
            self.nodes[slot] = self.nodes[children[0]]
            return slot
        firsts = [self.first_bytes(c) for c in children]
        for b in set().union(*firsts):
            alike = sum(b in f for f in firsts)
            if alike > MAX_BRANCHES:
                raise ValueError(f"json_schema {path}: {alike} alternatives can start with {b!r}; "
                                 f"at most {MAX_BRANCHES} are supported")
        return self.new(ANY_OF, children=children, into=slot)

    def switched(self, children: List[int]) -> List[int]:
        """Objects whose first property is the same key with a string const of their own (the
        tools of a function call, Pydantic's discriminated unions with the tag first) become one
        object whose const picks the rest: a switch node, matched like an enum, where following
        them side by side would open one parse each (past 16, a refusal)."""
        def tag(c):  # (the shared key literal, the const) of an alternative that can join a switch
            n = self.nodes[c]
            if n.kind != SEQ or len(n.children) < 3:
                return None
            key, const = self.nodes[n.children[0]], self.nodes[n.children[1]]
            if key.kind != LITERAL or const.kind != ENUM or len(const.options) != 1 or not const.options[0].startswith('"'):
                return None
            return key.text, const.options[0]
        groups: Dict[str, List[int]] = {}
        for c in children:
            t = tag(c)
            if t:
                groups.setdefault(t[0], []).append(c)
        out: List[int] = []
        for c in children:
            t = tag(c)
            group = groups.get(t[0], []) if t else []
            consts = [tag(g)[1] for g in group]
            if len(group) < 2 or len(set(consts)) != len(consts) or len(group) > MAX_OPTIONS:
                out.append(c)
                continue
            if c != group[0]:
                continue  # joined the first one's switch
            rests = []
            for g in group:
                rest = list(self.nodes[g].children[2:])
                rests.append(rest[0] if len(rest) == 1 else self.new(SEQ, children=rest))
            # Each option is the key and its tag, so the switch stands where each object's frame
            # stood, and gives its frame to the rest it picks: no deeper than the objects were.
            out.append(self.new(SWITCH, options=[t[0] + k for k in consts], children=rests))
        return out

    def ref(self, ref, path, into) -> int:
        if not isinstance(ref, str):
            raise ValueError(f"json_schema {path}: '$ref' must be a string")
        if ref in self.refs:
            if into is None:
                return self.refs[ref]
            raise Unsupported(f"json_schema {path}: a $ref to a $ref is not supported")
        parts = ref.split("/") if isinstance(ref, str) else []
        if len(parts) != 3 or parts[0] != "#" or parts[1] not in ("$defs", "definitions"):
            raise Unsupported(f"json_schema {path}: only '$ref's to '#/$defs/NAME' or '#/definitions/NAME' are supported")
        target = self.definition(parts[1], parts[2])
        if target is None:
            raise ValueError(f"json_schema {path}: $ref {ref!r} names no definition")
        slot = self.new(LITERAL, text="?", into=into)
        self.refs[ref] = slot
        return self.node(target, ref, into=slot)


def compile_schema(schema: Dict[str, Any], leave_out_unsupported: bool = True,
                   wrap: Optional[tuple] = None) -> "_core.JsonSchema":
    """The C++ automaton's graph for `schema` (a dict); ValueError for what it cannot enforce.
    leave_out_unsupported=False refuses an anyOf alternative it cannot enforce rather than leave
    it out (where the anyOf is the caller's own, as function calling's choice of tools).
    wrap=(before, after): the output is that text, the JSON, that text (a model's native tool-call
    markup around the call, as <tool_call> ... </tool_call>)."""
    if not isinstance(schema, dict):
        raise ValueError(f"json_schema must be an object (a dict), got {type(schema).__name__}")
    c = _Compiler(schema, leave_out_unsupported)
    c.nodes.append(None)  # node 0: the root
    top = 0
    if wrap is not None:
        before, after = (c.new(LITERAL, text=t) for t in wrap)
        top = c.new(LITERAL, text="?")  # the JSON's slot, filled below
        c.new(SEQ, children=(before, top, after), into=0)
    c.node(schema, "#", into=top)
    if c.first_bytes(top) != {"{"}:
        raise ValueError("json_schema: the top level must be an object (type 'object')")
    if any(n.kind == LITERAL and n.text == "?" for n in c.nodes):
        raise ValueError("json_schema: a $ref cycle with no object or array in between")
    try:  # the core's own checks (an anyOf reached through a $ref inside another anyOf, ...)
        return _core.JsonSchema(c.nodes)
    except _core.InvalidArgumentError as e:
        raise ValueError(str(e)) from None


def compile_regex(pattern: str) -> "_core.JsonSchema":
    """The automaton for an output that matches `pattern` as a whole (vLLM's guided_regex; the
    subset regex_dfa.py reads): it may end where the pattern is matched, and must where nothing
    can follow. ValueError for what it cannot run."""
    dfa = compile_pattern(pattern, whole_output=True, deadline=time.monotonic() + PATTERN_SECONDS)
    if dfa.accept[0] and all(t < 0 for t in dfa.next[0]):
        raise ValueError(f"pattern {pattern!r}: it matches only the empty output")
    n = _core.SchemaNode()
    n.kind = RAW
    set_dfa(n, dfa)
    return _core.JsonSchema([n])


def compile_choice(choices) -> "_core.JsonSchema":
    """An output that is exactly one of `choices` (vLLM's guided_choice)."""
    if not isinstance(choices, (list, tuple)) or not choices or not all(isinstance(c, str) and c for c in choices):
        raise ValueError("choice must be a non-empty list of non-empty strings")
    return compile_regex("(" + "|".join(escape(c) for c in choices) + ")")
