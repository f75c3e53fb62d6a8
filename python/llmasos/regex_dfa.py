"""A JSON schema's "pattern" (and the formats written as patterns) compiled to the DFA that
structured outputs run over a string's raw UTF-8 bytes (SchemaNode.dfa_* in
csrc/engine/json_schema.h).

The pattern language is ECMAScript's, as JSON Schema asks, in this subset: literal characters,
escapes (\\d \\w \\s and their negations, \\n \\t \\r \\f \\v \\0, \\xHH, \\uHHHH, escaped punctuation),
"." (any character but a line break), classes [...] with ranges and negation, groups (...) (?:...)
(?<name>...), alternation |, the quantifiers * + ? {n} {n,} {n,m} (lazy forms mean the same set of
strings), and ^ / $ at the start and end of the whole pattern. A pattern matches anywhere in the
string unless anchored, as JSON Schema says. Backreferences, lookaround and \\b are refused.

The string is written without escapes, so characters JSON must escape (controls, '"', '\\') are
never produced: a pattern that needs one of them can only match without it, or not at all (a
ValueError). Length bounds (minLength / maxLength) are folded into the DFA, which is then pruned
to the states from which a closing quote can still be reached, so a string never dead-ends.
"""
from __future__ import annotations

import collections
import time
from typing import Dict, FrozenSet, List, Optional, Sequence, Tuple

MAX_CP = 0x10FFFF
MAX_REPEAT = 1000      # the largest {n,m} bound taken
MAX_NFA_STATES = 20000
MAX_DFA_STATES = 4096  # also the cap on the pattern x length product

Ranges = List[Tuple[int, int]]  # sorted, disjoint, inclusive code point ranges


def _norm(ranges: Sequence[Tuple[int, int]]) -> Ranges:
    out: Ranges = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def _complement(ranges: Ranges) -> Ranges:
    out, at = [], 0
    for lo, hi in ranges:
        if lo > at:
            out.append((at, lo - 1))
        at = hi + 1
    if at <= MAX_CP:
        out.append((at, MAX_CP))
    return out


# What may stand raw between a JSON string's quotes: no controls, '"', '\', or surrogates; and
# what UTF-8 can encode at all (a whole raw output).
_RAW = _complement(_norm([(0, 0x1F), (0x22, 0x22), (0x5C, 0x5C), (0xD800, 0xDFFF)]))
_UTF8 = _complement([(0xD800, 0xDFFF)])


def _intersect(a: Ranges, b: Ranges) -> Ranges:
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo <= hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


DIGIT = [(0x30, 0x39)]
WORD = _norm([(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)])
SPACE = _norm([(0x09, 0x0D), (0x20, 0x20), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A),
               (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000), (0xFEFF, 0xFEFF)])
DOT = _complement(_norm([(0x0A, 0x0A), (0x0D, 0x0D), (0x2028, 0x2029)]))
ANY = [(0, MAX_CP)]
CLASS_ESCAPES = {"d": DIGIT, "w": WORD, "s": SPACE,
                 "D": _complement(DIGIT), "W": _complement(WORD), "S": _complement(SPACE)}
DIGITS = "0123456789"  # ASCII only, as ECMAScript's quantifier bounds ("١".isdigit() is True)
DIGITS_SET = set(DIGITS)
CHAR_ESCAPES = {"n": 0x0A, "t": 0x09, "r": 0x0D, "f": 0x0C, "v": 0x0B, "0": 0}


class _Parser:
    """Recursive descent over the pattern: nodes are ("set", ranges), ("seq", [nodes]),
    ("alt", [nodes]) and ("rep", node, lo, hi or None)."""

    def __init__(self, src: str):
        self.s, self.i = src, 0

    def fail(self, why: str):
        raise ValueError(f"pattern {self.s!r}: {why} (at offset {self.i})")

    def peek(self) -> Optional[str]:
        return self.s[self.i] if self.i < len(self.s) else None

    def take(self) -> str:
        c = self.peek()
        if c is None:
            self.fail("unexpected end")
        self.i += 1
        return c

    def alt(self):
        alts = [self.seq()]
        while self.peek() == "|":
            self.i += 1
            alts.append(self.seq())
        return alts[0] if len(alts) == 1 else ("alt", alts)

    def seq(self):
        items = []
        while self.peek() not in (None, "|", ")"):
            items.append(self.quantified(self.atom()))
        return ("seq", items)

    def number(self) -> Optional[int]:
        start = self.i
        while self.peek() is not None and self.peek() in DIGITS:
            self.i += 1
        return int(self.s[start:self.i]) if self.i > start else None

    def at_quantifier(self) -> bool:
        c = self.peek()
        return c in ("*", "+", "?") or (c == "{" and self.s[self.i + 1:self.i + 2] in DIGITS_SET)

    def quantified(self, node):
        if not self.at_quantifier():
            return node
        c = self.take()
        if c in ("*", "+", "?"):
            lo, hi = {"*": (0, None), "+": (1, None), "?": (0, 1)}[c]
        else:  # {n}, {n,}, {n,m}
            lo = self.number()
            hi = lo
            if self.peek() == ",":
                self.i += 1
                hi = self.number()
            if self.take() != "}":
                self.fail("a malformed {n,m}")
            if hi is not None and hi < lo:
                self.fail("{n,m} with m below n")
            if max(lo, hi or 0) > MAX_REPEAT:
                self.fail(f"a repeat count above {MAX_REPEAT}")
        if self.peek() == "?":  # lazy: the same set of strings
            self.i += 1
        if self.at_quantifier():
            self.fail("a quantifier with nothing to repeat")
        return ("rep", node, lo, hi)

    def atom(self):
        c = self.take()
        if c == "(":
            if self.peek() == "?":
                self.i += 1
                kind = self.take()
                if kind == "<" and self.peek() not in ("=", "!"):
                    while self.take() != ">":
                        pass
                elif kind != ":":
                    self.fail("only (...), (?:...) and (?<name>...) groups are supported (no lookaround or flags)")
            node = self.alt()
            if self.peek() != ")":
                self.fail("an unclosed group")
            self.i += 1
            return node
        if c == "[":
            return ("set", self.char_class())
        if c == ".":
            return ("set", DOT)
        if c == "\\":
            return ("set", self.escape(in_class=False))
        if c in ("^", "$"):
            self.fail(f"'{c}' is supported only at the start / end of the whole pattern")
        if c in ("*", "+", "?", ")"):
            self.fail(f"a stray '{c}'")
        if c == "{" and self.s[self.i:self.i + 1] in DIGITS_SET:
            self.fail("a quantifier with nothing to repeat")
        return ("set", [(ord(c), ord(c))])

    def hex(self, n: int) -> int:
        digits = self.s[self.i:self.i + n]
        if len(digits) != n or any(d not in "0123456789abcdefABCDEF" for d in digits):
            self.fail(f"expected {n} hex digits")
        self.i += n
        return int(digits, 16)

    def escape(self, in_class: bool) -> Ranges:
        c = self.take()
        if c in CLASS_ESCAPES:
            return CLASS_ESCAPES[c]
        if c == "0" and self.peek() is not None and self.peek() in DIGITS:
            self.fail("octal escapes (\\0 and a digit) are not supported")
        if c in CHAR_ESCAPES:
            cp = CHAR_ESCAPES[c]
        elif c == "x":
            cp = self.hex(2)
        elif c == "u":
            cp = self.hex(4)
        elif c == "b" and in_class:
            cp = 0x08
        elif c.isalnum():
            self.fail(f"the escape \\{c} is not supported")
        else:
            cp = ord(c)
        return [(cp, cp)]

    def char_class(self) -> Ranges:
        negate = self.peek() == "^"
        if negate:
            self.i += 1
        ranges: Ranges = []
        while True:  # as in ECMAScript, ']' always closes: [] matches nothing, [^] anything
            c = self.take()
            if c == "]":
                break
            lo_set = self.escape(in_class=True) if c == "\\" else [(ord(c), ord(c))]
            if self.peek() == "-" and self.s[self.i + 1:self.i + 2] not in ("]", "") and len(lo_set) == 1 \
                    and lo_set[0][0] == lo_set[0][1]:
                self.i += 1
                c2 = self.take()
                hi_set = self.escape(in_class=True) if c2 == "\\" else [(ord(c2), ord(c2))]
                if len(hi_set) != 1 or hi_set[0][0] != hi_set[0][1] or hi_set[0][0] < lo_set[0][0]:
                    self.fail("a bad range in a class")
                ranges.append((lo_set[0][0], hi_set[0][0]))
            else:
                ranges.extend(lo_set)
        ranges = _norm(ranges)
        return _complement(ranges) if negate else ranges


def parse(pattern: str):
    """(node, anchored at start, anchored at end) of an ECMAScript pattern (the subset above)."""
    if not isinstance(pattern, str):
        raise ValueError(f"pattern must be a string, got {pattern!r}")
    start = pattern.startswith("^")
    body = pattern[1:] if start else pattern
    # A final '$' anchors unless an odd run of backslashes escapes it.
    end = body.endswith("$") and (len(body) - 1 - len(body[:-1].rstrip("\\"))) % 2 == 0
    body = body[:-1] if end else body
    p = _Parser(body)
    node = p.alt()
    if p.peek() is not None:
        p.fail("an unmatched ')'")
    if (start or end) and node[0] == "alt":
        raise ValueError(f"pattern {pattern!r}: write an anchored alternation as ^(a|b)$")
    return node, start, end


# ---- UTF-8 byte sequences of code point ranges ----------------------------------------------------

def _encode(cp: int) -> bytes:
    return chr(cp).encode("utf-8", "surrogatepass")


def _utf8_sequences(lo: int, hi: int):
    """Lists of byte ranges [(b0lo, b0hi), ...], each sequence of one encoded length, that
    together encode exactly the code points lo..hi (surrogates excluded by the caller)."""
    if lo > hi:
        return
    for top in (0x7F, 0x7FF, 0xFFFF):
        if lo <= top < hi:
            yield from _utf8_sequences(lo, top)
            yield from _utf8_sequences(top + 1, hi)
            return
    if hi <= 0x7F:
        yield [(lo, hi)]
        return
    for i in range(1, 4):
        m = (1 << (6 * i)) - 1
        if lo & ~m != hi & ~m:
            if lo & m:
                yield from _utf8_sequences(lo, lo | m)
                yield from _utf8_sequences((lo | m) + 1, hi)
                return
            if hi & m != m:
                yield from _utf8_sequences(lo, (hi & ~m) - 1)
                yield from _utf8_sequences(hi & ~m, hi)
                return
    yield list(zip(_encode(lo), _encode(hi)))


# ---- Thompson NFA over bytes, then subset construction -------------------------------------------

class _Nfa:
    def __init__(self, allowed: Ranges):
        self.allowed = allowed  # the characters that may be produced
        self.eps: List[List[int]] = []
        self.edges: List[List[Tuple[int, int, int]]] = []  # (byte lo, byte hi, target)

    def state(self) -> int:
        if len(self.eps) >= MAX_NFA_STATES:
            raise ValueError(f"pattern too large (more than {MAX_NFA_STATES} automaton states)")
        self.eps.append([])
        self.edges.append([])
        return len(self.eps) - 1

    def build(self, node, s: int) -> int:
        """Adds node's fragment starting at state s; returns its end state."""
        kind = node[0]
        if kind == "set":
            end = self.state()
            for lo, hi in _intersect(node[1], self.allowed):
                for seq in _utf8_sequences(lo, hi):
                    at = s
                    for k, (blo, bhi) in enumerate(seq):
                        nxt = end if k == len(seq) - 1 else self.state()
                        self.edges[at].append((blo, bhi, nxt))
                        at = nxt
            return end
        if kind == "seq":
            for item in node[1]:
                s = self.build(item, s)
            return s
        if kind == "alt":
            end = self.state()
            for a in node[1]:
                start = self.state()
                self.eps[s].append(start)
                self.eps[self.build(a, start)].append(end)
            return end
        _, sub, lo, hi = node  # "rep"
        for _ in range(lo):
            s = self.build(sub, s)
        if hi is None:
            loop = self.state()
            self.eps[s].append(loop)
            self.eps[self.build(sub, loop)].append(loop)
            return loop
        end = self.state()
        self.eps[s].append(end)
        for _ in range(hi - lo):
            s = self.build(sub, s)
            self.eps[s].append(end)
        return end

    def closure(self, states) -> FrozenSet[int]:
        seen, stack = set(states), list(states)
        while stack:
            for t in self.eps[stack.pop()]:
                if t not in seen:
                    seen.add(t)
                    stack.append(t)
        return frozenset(seen)


class Dfa:
    """classes[byte] -> class; next[state][class] -> state or -1; accept[state]. State 0 starts.
    dist, when the length bound is left to the automaton (too many states to fold it in): per
    state, the fewest characters still needed to reach an accepting state."""

    def __init__(self, classes: List[int], n_classes: int, next_: List[List[int]], accept: List[bool]):
        self.classes, self.n_classes, self.next, self.accept = classes, n_classes, next_, accept
        self.dist: Optional[List[int]] = None

    def chars_to_accept(self) -> List[int]:
        """0-1 breadth-first search back from the accepting states: a byte that starts a
        character costs 1, a continuation byte 0."""
        back: List[List[Tuple[int, int]]] = [[] for _ in self.accept]
        for s, row in enumerate(self.next):
            for b in range(256):
                t = row[self.classes[b]]
                if t >= 0:
                    back[t].append((s, 0 if b & 0xC0 == 0x80 else 1))
        inf = 1 << 30
        dist = [0 if a else inf for a in self.accept]
        queue = collections.deque(i for i, a in enumerate(self.accept) if a)
        while queue:
            t = queue.popleft()
            for s, w in back[t]:
                if dist[t] + w < dist[s]:
                    dist[s] = dist[t] + w
                    (queue.appendleft if w == 0 else queue.append)(s)
        return dist

    def matches(self, data: bytes) -> bool:
        s = 0
        for b in data:
            s = self.next[s][self.classes[b]]
            if s < 0:
                return False
        return self.accept[s]


def _byte_classes(nfa: _Nfa) -> Tuple[List[int], List[int]]:
    cuts = {0, 256}
    for edges in nfa.edges:
        for lo, hi, _ in edges:
            cuts.update((lo, hi + 1))
    bounds = sorted(cuts)
    classes, reps = [0] * 256, []
    for k in range(len(bounds) - 1):
        reps.append(bounds[k])
        for b in range(bounds[k], bounds[k + 1]):
            classes[b] = k
    return classes, reps


def _determinize(nfa: _Nfa, start: int, final: int, min_len: int, max_len: Optional[int],
                 deadline: Optional[float]) -> Dfa:
    """Subset construction of the NFA, in product with a count of characters (capped at max_len,
    or at min_len when there is no maximum), then pruned to the states that can still accept."""
    classes, reps = _byte_classes(nfa)
    cap = max_len if max_len is not None else min_len
    first = (nfa.closure([start]), 0)
    index: Dict[Tuple[FrozenSet[int], int], int] = {first: 0}
    order = [first]
    table: List[List[int]] = []
    for states, count in order:  # grows while walked
        if deadline is not None and len(table) % 32 == 0 and time.monotonic() > deadline:
            raise ValueError("pattern too complex to compile in time")
        row = []
        for b in reps:
            targets = [t for s in states for lo, hi, t in nfa.edges[s] if lo <= b <= hi]
            n = count + (1 if b & 0xC0 != 0x80 else 0)  # a character starts on a non-continuation byte
            if not targets or (max_len is not None and n > max_len):
                row.append(-1)
                continue
            key = (nfa.closure(targets), min(n, cap))
            if key not in index:
                if len(order) >= MAX_DFA_STATES:
                    raise _TooManyStates(f"pattern too large (more than {MAX_DFA_STATES} states with its length bounds)")
                index[key] = len(order)
                order.append(key)
            row.append(index[key])
        table.append(row)
    accept = [final in states and count >= min_len for states, count in order]
    # Keep the states from which an accepting one is reachable.
    live = [a for a in accept]
    changed = True
    while changed:
        changed = False
        for i, row in enumerate(table):
            if not live[i] and any(t >= 0 and live[t] for t in row):
                live[i] = changed = True
    if not live[0]:
        raise ValueError("no string can match it")
    renum, n_live = {}, 0
    for i, ok in enumerate(live):
        if ok:
            renum[i] = n_live
            n_live += 1
    next_ = [[renum[t] if t >= 0 and live[t] else -1 for t in table[i]] for i in range(len(table)) if live[i]]
    return Dfa(classes, len(reps), next_, [accept[i] for i in range(len(table)) if live[i]])


class _TooManyStates(ValueError):
    pass


def compile_pattern(pattern: Optional[str], min_len: int = 0, max_len: Optional[int] = None, *,
                    whole_output: bool = False, deadline: Optional[float] = None) -> Dfa:
    """The DFA of the raw strings (UTF-8) that match `pattern` (None: any) and hold min_len ..
    max_len characters: inside a JSON string, or with `whole_output` the whole of a model's output
    (any character, and the pattern matching all of it, as vLLM's guided_regex). ValueError for
    what is unsupported or can match nothing."""
    node, start, end = parse(pattern) if pattern is not None else (("seq", []), False, False)
    if whole_output:
        start = end = True
    if not start:
        node = ("seq", [("rep", ("set", ANY), 0, None), node])
    if not end:
        node = ("seq", [node, ("rep", ("set", ANY), 0, None)])
    nfa = _Nfa(_UTF8 if whole_output else _RAW)
    s0 = nfa.state()
    final = nfa.build(node, s0)
    try:
        try:
            return _determinize(nfa, s0, final, min_len, max_len, deadline)
        except _TooManyStates as e:
            if max_len is None:
                raise
            too_many = e
        # A maximum, and too many states to fold it in: the plain DFA, and the automaton keeps
        # the count, taking a byte only while the count plus the characters still needed (dist)
        # stays within it, so no string dead-ends. A minimum can stay out only where the pattern's
        # shortest string already meets it (a URL's minLength 1).
        dfa = _determinize(nfa, s0, final, 0, None, deadline)
        dfa.dist = dfa.chars_to_accept()
        if dfa.dist[0] < min_len:
            raise too_many
        if dfa.dist[0] > max_len:
            raise ValueError("no string can match it within maxLength")
        return dfa
    except ValueError as e:
        raise ValueError(f"pattern {pattern!r}: {e}") from None


def escape(text: str) -> str:
    """`text` as a pattern that matches exactly it."""
    return "".join("\\" + c if c in "\\^$.|?*+()[]{}/-" else c for c in text)


# JSON Schema formats as patterns of strings that the format accepts (a subset where the format is
# wider: dates from year 1000 on, February up to the 28th, e-mail addresses of the plain form).
_DATE = r"[1-9][0-9]{3}-((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8]))"
_TIME = r"([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_HEX = "[0-9a-fA-F]"
_N = "[0-9]{1,6}"
_DUR_TIME = f"({_N}H({_N}M({_N}S)?)?|{_N}M({_N}S)?|{_N}S)"
_DUR_DATE = f"({_N}Y({_N}M({_N}D)?)?|{_N}M({_N}D)?|{_N}D)"
# Host labels of up to 32 letters and digits joined by single hyphens (63 bytes at most): none
# ends in '-', and none has the '--' of IDNA's reserved labels ("xn--a" is no valid punycode, which
# URL parsers refuse).
_LABEL = "[A-Za-z0-9](-?[A-Za-z0-9]){0,31}"
# A host's last label starts with a letter: URL parsers read a numeric one as an IPv4 address
_TOP = "[A-Za-z](-?[A-Za-z0-9]){0,31}"
_H16 = f"{_HEX}{{1,4}}"
_IPV6 = "(" + "|".join([f"({_H16}:){{7}}{_H16}", f"({_H16}:){{1,7}}:", f":(:{_H16}){{1,7}}", "::"] +
                       [f"({_H16}:){{{k}}}(:{_H16}){{1,{7 - k}}}" for k in range(1, 7)]) + ")"
_PCHAR = r"([A-Za-z0-9._~!$&'()*+,;=:@-]|%[0-9A-Fa-f]{2})"
FORMATS: Dict[str, str] = {
    "date": f"^{_DATE}$",
    "time": f"^{_TIME}$",
    "date-time": f"^{_DATE}T{_TIME}$",
    "uuid": f"^{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}$",
    "ipv4": rf"^({_OCTET}\.){{3}}{_OCTET}$",
    # dot-atoms: no leading, trailing or doubled dots; labels neither start nor end with '-'
    "email": r"^[A-Za-z0-9_%+-]+(\.[A-Za-z0-9_%+-]+)*@[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?"
             r"(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+$",
    # RFC 3339's duration grammar (Y M D contiguous, weeks alone); 6 digits a field keep it within
    # what Python's timedelta holds
    "duration": rf"^P({_DUR_DATE}(T{_DUR_TIME})?|T{_DUR_TIME}|{_N}W)$",
    "hostname": f"^({_LABEL}\\.)*{_TOP}$",  # RFC 1123 labels (the 253-character total: FORMAT_MAX_LENGTH)
    "ipv6": f"^{_IPV6}$",  # the eight groups, or '::' standing for a run of them (no IPv4 tail, no zone)
    # http(s) URLs: a host name or IPv4 address, a port, and a path, query and fragment of RFC
    # 3986's unreserved and sub-delimiter characters and %-escapes
    "uri": rf"^https?://(({_LABEL}\.)*{_TOP}|({_OCTET}\.){{3}}{_OCTET})(:[1-9][0-9]{{0,3}})?"
           rf"(/{_PCHAR}*)*(\?({_PCHAR}|[/?])*)?(#({_PCHAR}|[/?])*)?$",
}
FORMATS["ipvanyaddress"] = f"^(({_OCTET}\\.){{3}}{_OCTET}|{_IPV6})$"  # Pydantic's IPvAnyAddress
FORMATS["ipvanyinterface"] = FORMATS["ipvanyaddress"]
FORMAT_MAX_LENGTH = {"hostname": 253}
# Formats that say no more of a string than that it is one (Pydantic's bytes and SecretStr).
PLAIN_FORMATS: Dict[str, str] = {"binary", "password"}
