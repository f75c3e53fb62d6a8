"""Structured outputs' value nodes (json_schema.py compiles the rest): strings with their lengths,
patterns and formats, numbers and integers with their bounds and multipleOf, enums and consts; the
node kinds and what both modules share."""
from __future__ import annotations

import json
import math
from decimal import Decimal
from fractions import Fraction

from .regex_dfa import FORMAT_MAX_LENGTH, FORMATS, PLAIN_FORMATS, compile_pattern

LITERAL, ENUM, STRING, NUMBER, INTEGER, SEQ, ARRAY, ANY_OF, OBJECT, PROPS, RAW, SWITCH, MAP = range(13)
MAX_OPTIONS = 64

ANNOTATIONS = {"title", "description", "default", "examples", "$schema", "$id", "$comment", "deprecated", "discriminator",
               "readOnly", "writeOnly", "$defs", "definitions", "strict"}
STRING_KEYS = ("minLength", "maxLength", "pattern", "format")
BOUND_KEYS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")
# Bounded numbers: 6 decimals, and 15 significant digits at most (json_schema.h); integers 18 digits.
NUMBER_DECIMALS, NUMBER_DIGITS, INTEGER_DIGITS = 6, 15, 18
NUMBER_START = set("-0123456789")


class Unsupported(ValueError):
    """A schema (or part of one) that is valid JSON Schema but asks for what the automaton cannot
    enforce: refused, except as one of an anyOf's alternatives, which is then left out (what is
    written still matches another one)."""


def has_type(value, t) -> bool:
    """Whether a JSON value (as json.loads gives it) has JSON Schema type t (a name)."""
    if not isinstance(t, str):
        return False
    if t == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, float) and value.is_integer())
    kinds = {"string": str, "number": (int, float), "boolean": bool, "null": type(None), "object": dict, "array": list}
    return t in kinds and isinstance(value, kinds[t]) and not (t == "number" and isinstance(value, bool))


def set_dfa(node, dfa) -> None:
    """A string's or a raw output's DFA tables, as SchemaNode keeps them."""
    node.dfa_class, node.dfa_classes = dfa.classes, dfa.n_classes
    node.dfa_next = [t for row in dfa.next for t in row]
    node.dfa_accept = [int(a) for a in dfa.accept]
    node.dfa_dist = dfa.dist or []


def compact_json(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


class ValueNodes:
    """The value nodes of json_schema._Compiler (which gives new(), nodes and deadline)."""

    def count_bounds(self, s, low, high, path):
        """(minimum, maximum or -1) of a count pair (minLength / maxLength, minItems / maxItems, ...), checked."""
        lo, hi = s.get(low, 0), s.get(high, -1)
        for name, v in ((low, lo), (high, hi)):
            if isinstance(v, bool) or not isinstance(v, int) or v < (-1 if name == high else 0) or v >= 2**31:
                raise ValueError(f"json_schema {path}: '{name}' must be a non-negative integer below 2^31")
        if 0 <= hi < lo:
            raise ValueError(f"json_schema {path}: {high} is below {low}")
        return lo, hi

    def string(self, s, path, into) -> int:
        lo, hi = self.count_bounds(s, "minLength", "maxLength", path)
        pattern = s.get("pattern")
        if "format" in s and not (isinstance(s["format"], str) and s["format"] in PLAIN_FORMATS):
            if pattern is not None:
                raise Unsupported(f"json_schema {path}: 'pattern' beside 'format' is not supported")
            if not isinstance(s["format"], str) or s["format"] not in FORMATS:
                raise Unsupported(f"json_schema {path}: format {s['format']!r} is not supported "
                                  f"(supported: {', '.join(sorted(set(FORMATS) | PLAIN_FORMATS))})")
            pattern = FORMATS[s["format"]]
            most = FORMAT_MAX_LENGTH.get(s["format"], -1)
            hi = most if hi < 0 else min(hi, most) if most >= 0 else hi
            if 0 <= hi < lo:
                raise ValueError(f"json_schema {path}: no {s['format']} has minLength characters")
        n = self.new(STRING, min_items=lo, max_items=hi, into=into)
        if pattern is not None:
            try:
                dfa = compile_pattern(pattern, lo, hi if hi >= 0 else None, deadline=self.deadline)
            except ValueError as e:
                raise Unsupported(f"json_schema {path}: {e}") from None
            set_dfa(self.nodes[n], dfa)
        return n

    def number(self, t, s, path, into) -> int:
        n = self.new(NUMBER if t == "number" else INTEGER, into=into)
        if not any(k in s for k in BOUND_KEYS):
            return n
        frac = NUMBER_DECIMALS if t == "number" else 0
        most = 10 ** ((NUMBER_DIGITS - frac) if t == "number" else INTEGER_DIGITS) * 10 ** frac - 1
        scale = 10 ** frac

        def bound(key):
            v = s.get(key)
            if isinstance(v, bool) and key.startswith("exclusive"):  # draft 4: a flag on minimum / maximum
                return None
            if v is None:
                return None
            if isinstance(v, bool) or not isinstance(v, (int, float)) or (isinstance(v, float) and not math.isfinite(v)):
                raise ValueError(f"json_schema {path}: '{key}' must be a finite number")
            return Decimal(repr(v)) * scale if isinstance(v, float) else Decimal(v) * scale

        lo, hi = -most, most  # in units of 10^-frac
        lows = [(bound("minimum"), s.get("exclusiveMinimum") is True), (bound("exclusiveMinimum"), True)]
        highs = [(bound("maximum"), s.get("exclusiveMaximum") is True), (bound("exclusiveMaximum"), True)]
        for v, excl in lows:
            if v is not None:
                lo = max(lo, math.floor(v) + 1 if excl else math.ceil(v))
        for v, excl in highs:
            if v is not None:
                hi = min(hi, math.ceil(v) - 1 if excl else math.floor(v))
        step = self.multiple_units(s.get("multipleOf"), t, scale, path) if "multipleOf" in s else 1
        if step > most:  # no multiple but 0 has few enough digits
            lo, hi, step = max(lo, 0), min(hi, 0), 1
        if t == "integer" and isinstance(s.get("multipleOf"), float):
            # Validators divide an integer by a float divisor as doubles, exact only up to 2^53.
            lo, hi = max(lo, -2**53), min(hi, 2**53)
        lo = -(-lo // step) * step  # the multiples at or inside the bounds
        hi = hi // step * step
        if lo > hi:
            what = "integer" if t == "integer" else f"number of up to {NUMBER_DECIMALS} decimals"
            raise ValueError(f"json_schema {path}: no {what} within {NUMBER_DIGITS if frac else INTEGER_DIGITS} "
                             "digits lies within its bounds" + (" and is a multiple of multipleOf" if step > 1 else ""))
        node = self.nodes[n]
        node.bounded, node.frac_digits, node.min_units, node.max_units = True, frac, int(lo), int(hi)
        node.multiple_units = step
        return n

    @staticmethod
    def multiple_units(m, t, scale, path) -> int:
        """multipleOf in a bounded number's units. Validators divide as doubles (jsonschema: x / m
        is a whole number), so m must be exact in binary: then every multiple the automaton writes
        (at most 15 digits) divides exactly. 0.01 is not, and x / 0.01 is no whole number for
        most of its multiples (0.07 / 0.01 = 7.000000000000001): refused rather than misjudged."""
        if isinstance(m, bool) or not isinstance(m, (int, float)) or not math.isfinite(m) or m <= 0:
            raise ValueError(f"json_schema {path}: 'multipleOf' must be a positive number")
        if isinstance(m, float) and Decimal(repr(m)) != Decimal(m):
            raise Unsupported(f"json_schema {path}: multipleOf {m!r} is not exact as a binary double, so validators "
                              "do not agree on its multiples; a power of two times an integer (0.5, 0.25, 3) is")
        exact = Fraction(m)
        # An integer's multiples of p / q (lowest terms) are the multiples of p.
        units = exact.numerator if t == "integer" else exact * scale
        if not isinstance(units, int) and units.denominator != 1:
            raise Unsupported(f"json_schema {path}: multipleOf {m!r} has more than {NUMBER_DECIMALS} decimals")
        return int(units)

    def enum(self, values, path, into) -> int:
        try:
            options = list(dict.fromkeys(compact_json(v) for v in values))  # unique, in order
        except (TypeError, ValueError) as e:
            raise ValueError(f"json_schema {path}: enum / const values must be JSON values ({e})") from None
        if len(options) > MAX_OPTIONS:
            raise Unsupported(f"json_schema {path}: at most {MAX_OPTIONS} enum values are supported")
        return self.new(ENUM, options=options, into=into)
