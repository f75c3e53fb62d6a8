"""GBNF grammars, llama.cpp's format (its grammars/README.md): the text parsed into the rules the
C++ automaton runs (csrc/engine/grammar.h), for SamplingParams.grammar, llama.cpp server's and
llama-cpp-python's `grammar` field and vLLM's `guided_grammar`.

    root ::= ("- " item)+          # the whole output; a rule per line
    item ::= [^\\n]+ "\\n"          # classes [a-z] [^...], literals "...", any character .

Supported as llama.cpp reads them: rule names of letters, digits and '-' (and '_'); literals and
character classes with the escapes \\n \\r \\t \\\\ \\" \\[ \\] \\- \\xHH \\uHHHH \\UHHHHHHHH; `.`;
groups ( ... ); alternatives |; the repetitions * + ? {m} {m,} {m,n} {,n}; # comments. A newline
ends a rule, except inside a group or after `|`. Token references (<[id]>, <token>, !<...>) are
refused. So is left recursion (a rule that can come back to itself before any character, as
`x*` of an x that can be empty), which would expand forever, as llama.cpp refuses it.

Repetitions become rules of their own as llama.cpp makes them: x* is `r ::= x r |`, x{0,n} the
nested (x (x ...)?)?, so that parse stacks stay short."""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

from . import _core

_RULE, _CHARS = 1, 2
_MAX_REPEAT = 10000  # the largest count a {m,n} may give (each copy is a symbol)
_ESCAPES = {"n": 0x0A, "r": 0x0D, "t": 0x09, "\\": 0x5C, '"': 0x22, "[": 0x5B, "]": 0x5D, "-": 0x2D}
_HEX_ESCAPES = {"x": 2, "u": 4, "U": 8}


class GrammarError(ValueError):
    """A grammar that cannot be used: where (line and column) and why."""


def _is_word(c: str) -> bool:
    return c.isascii() and (c.isalnum() or c in "-_")


class _Parser:
    def __init__(self, text: str):
        self.s = text
        self.i = 0
        self.index: Dict[str, int] = {}     # rule name -> its index
        self.names: List[str] = []
        self.rules: List[Optional[List[List[Tuple[int, int]]]]] = []
        self.origin: List[str] = []          # the rule a synthetic one was made for (errors)
        self.first_use: Dict[str, int] = {}  # where an undefined name was first referred to
        self.classes: Dict[Tuple[bool, Tuple[Tuple[int, int], ...]], int] = {}

    # -- where, and errors ------------------------------------------------------------------
    def error(self, why: str, at: Optional[int] = None) -> GrammarError:
        at = self.i if at is None else at
        line = self.s.count("\n", 0, at) + 1
        col = at - (self.s.rfind("\n", 0, at) + 1) + 1
        return GrammarError(f"grammar, line {line}, column {col}: {why}")

    def peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.s[j] if j < len(self.s) else ""

    def space(self, newlines: bool) -> None:
        while self.i < len(self.s):
            c = self.s[self.i]
            if c in " \t" or (newlines and c in "\r\n"):
                self.i += 1
            elif c == "#":
                while self.i < len(self.s) and self.s[self.i] not in "\r\n":
                    self.i += 1
            else:
                return

    # -- rules --------------------------------------------------------------------------------
    def rule_id(self, name: str, origin: Optional[str] = None) -> int:
        if name not in self.index:
            self.index[name] = len(self.rules)
            self.names.append(name)
            self.rules.append(None)
            self.origin.append(origin or name)
        return self.index[name]

    def synthetic(self, base: str, alts: List[List[Tuple[int, int]]]) -> int:
        k = len(self.rules)
        while f"{base}-{k}" in self.index:
            k += 1
        r = self.rule_id(f"{base}-{k}", self.origin[self.index[base]] if base in self.index else base)
        self.rules[r] = alts
        return r

    def char_class(self, negated: bool, ranges) -> Tuple[int, int]:
        key = (negated, tuple(sorted(set(ranges))))
        if key not in self.classes:
            self.classes[key] = len(self.classes)
        return (_CHARS, self.classes[key])

    def parse(self) -> None:
        self.space(True)
        while self.i < len(self.s):
            self.parse_rule()
            self.space(True)
        for name, r in self.index.items():
            if self.rules[r] is None:
                raise self.error(f"rule '{name}' is used but not defined", self.first_use.get(name))
        if "root" not in self.index:
            raise GrammarError("grammar: there is no 'root' rule (the whole output)")

    def name(self) -> str:
        j = self.i
        while self.i < len(self.s) and _is_word(self.s[self.i]):
            self.i += 1
        if j == self.i:
            raise self.error(f"expected a rule name, found {self.peek()!r}")
        return self.s[j:self.i]

    def parse_rule(self) -> None:
        at = self.i
        name = self.name()
        self.space(False)
        if not self.s.startswith("::=", self.i):
            raise self.error("expected '::=' after the rule name")
        self.i += 3
        self.space(True)
        r = self.rule_id(name)
        if self.rules[r] is not None:
            raise self.error(f"rule '{name}' is defined twice", at)
        self.rules[r] = []  # defined (a reference to itself inside is fine)
        self.rules[r] = self.alternates(name, nested=False)
        self.space(False)
        if self.i < len(self.s) and self.s[self.i] not in "\r\n":
            raise self.error(f"unexpected {self.peek()!r}")

    def alternates(self, rule: str, nested: bool) -> List[List[Tuple[int, int]]]:
        alts = [self.sequence(rule, nested)]
        while self.peek() == "|":
            self.i += 1
            self.space(True)
            alts.append(self.sequence(rule, nested))
        return alts

    # -- sequences ----------------------------------------------------------------------------
    def sequence(self, rule: str, nested: bool) -> List[Tuple[int, int]]:
        syms: List[Tuple[int, int]] = []
        last: Optional[int] = None  # where the last item's symbols begin (for a repetition)
        while self.i < len(self.s):
            c = self.s[self.i]
            if c == '"':
                last = len(syms)
                self.i += 1
                while self.peek() != '"':
                    if self.i >= len(self.s):
                        raise self.error("unterminated literal")
                    cp = self.char()
                    syms.append(self.char_class(False, [(cp, cp)]))
                self.i += 1
            elif c == "[":
                last = len(syms)
                syms.append(self.bracket())
            elif c == ".":
                last = len(syms)
                self.i += 1
                syms.append(self.char_class(True, []))
            elif _is_word(c):
                last = len(syms)
                at = self.i
                name = self.name()
                self.first_use.setdefault(name, at)
                syms.append((_RULE, self.rule_id(name)))
            elif c == "(":
                last = len(syms)
                self.i += 1
                self.space(True)
                alts = self.alternates(rule, nested=True)
                if self.peek() != ")":
                    raise self.error("expected ')'")
                self.i += 1
                syms.append((_RULE, self.synthetic(rule, alts)))
            elif c == "<" or (c == "!" and self.peek(1) == "<"):
                raise self.error("token references (<[id]>, <token>, !<...>) are not supported; write the text")
            elif c in "*+?{":
                if last is None:
                    raise self.error(f"{c!r} has nothing before it to repeat")
                lo, hi = self.repetition()
                self.repeat(rule, syms, last, lo, hi)
                last = None
            else:
                break
            self.space(nested)
        return syms

    def char(self) -> int:
        """One character of a literal or class (an escape read as what it stands for)."""
        if self.peek() != "\\":
            cp = ord(self.s[self.i])
            self.i += 1
            return cp
        e = self.peek(1)
        if e in _ESCAPES:
            self.i += 2
            return _ESCAPES[e]
        if e in _HEX_ESCAPES:
            n = _HEX_ESCAPES[e]
            digits = self.s[self.i + 2:self.i + 2 + n]
            if len(digits) != n or any(d not in "0123456789abcdefABCDEF" for d in digits):
                raise self.error(f"\\{e} needs {n} hex digits")
            cp = int(digits, 16)
            if cp > 0x10FFFF:
                raise self.error(f"\\{e}{digits} is beyond Unicode")
            self.i += 2 + n
            return cp
        raise self.error(f"unknown escape '\\{e}'" if e else "unterminated escape")

    def bracket(self) -> Tuple[int, int]:
        self.i += 1  # '['
        negated = self.peek() == "^"
        if negated:
            self.i += 1
        ranges = []
        while self.peek() != "]":
            if self.i >= len(self.s):
                raise self.error("unterminated character class")
            lo = self.char()
            hi = lo
            if self.peek() == "-" and self.peek(1) not in ("]", ""):
                self.i += 1
                hi = self.char()
                if hi < lo:
                    raise self.error(f"the range {chr(lo)!r}-{chr(hi)!r} runs backwards")
            ranges.append((lo, hi))
        self.i += 1
        return self.char_class(negated, ranges)

    def repetition(self) -> Tuple[int, Optional[int]]:
        c = self.s[self.i]
        self.i += 1
        if c != "{":
            return {"*": (0, None), "+": (1, None), "?": (0, 1)}[c]

        def number() -> Optional[int]:
            self.space(False)
            j = self.i
            while self.peek().isdigit() and self.peek().isascii():
                self.i += 1
            self.space(False)
            return int(self.s[j:self.i].strip()) if self.s[j:self.i].strip() else None

        lo = number()
        hi: Optional[int] = lo
        if self.peek() == ",":
            self.i += 1
            hi = number()
        if self.peek() != "}":
            raise self.error("expected '}' to close a repetition")
        self.i += 1
        if lo is None and hi is None:
            raise self.error("a repetition {m,n} needs a number")
        lo = lo or 0
        if max(lo, hi or 0) > _MAX_REPEAT:
            raise self.error(f"a repetition count above {_MAX_REPEAT}")
        if hi is not None and hi < lo:
            raise self.error(f"the repetition {{{lo},{hi}}} has its maximum below its minimum")
        return lo, hi

    def repeat(self, rule: str, syms: List[Tuple[int, int]], last: int, lo: int, hi: Optional[int]) -> None:
        item = syms[last:]
        del syms[last:]
        if len(item) != 1:  # a literal of several characters (or none): one rule for it
            item = [(_RULE, self.synthetic(rule, [item]))]
        x = item[0]
        syms.extend([x] * lo)
        if hi is None:  # r ::= x r | (empty)
            r = self.synthetic(rule, [[], []])
            self.rules[r] = [[x, (_RULE, r)], []]
            syms.append((_RULE, r))
        elif hi > lo:  # (x (x (x)?)?)?, innermost first
            inner: Optional[int] = None
            for _ in range(hi - lo):
                alt = [x] + ([(_RULE, inner)] if inner is not None else [])
                inner = self.synthetic(rule, [alt, []])
            syms.append((_RULE, inner))

    # -- checks -------------------------------------------------------------------------------
    def check_left_recursion(self) -> None:
        n = len(self.rules)
        nullable = [False] * n
        changed = True
        while changed:
            changed = False
            for r, alts in enumerate(self.rules):
                if not nullable[r] and any(all(k == _RULE and nullable[a] for k, a in alt) for alt in alts):
                    nullable[r] = changed = True
        state = [0] * n  # 0 unseen, 1 on the path, 2 done
        for start in range(n):
            if state[start]:
                continue
            # Depth-first without recursion (grammars can nest deeply): (rule, its left edges, next).
            state[start] = 1
            stack = [(start, self.left_edges(start, nullable), 0)]
            while stack:
                r, edges, k = stack[-1]
                if k == len(edges):
                    state[r] = 2
                    stack.pop()
                    continue
                stack[-1] = (r, edges, k + 1)
                s = edges[k]
                if state[s] == 1:
                    raise GrammarError(f"grammar: left recursion in rule '{self.origin[s]}': it can come back "
                                       "to itself before any character (a repetition of something that can be "
                                       "empty does too), which would expand forever")
                if state[s] == 0:
                    state[s] = 1
                    stack.append((s, self.left_edges(s, nullable), 0))

    def left_edges(self, r: int, nullable: List[bool]) -> List[int]:
        out = []
        for alt in self.rules[r]:
            for k, a in alt:
                if k != _RULE:
                    break
                out.append(a)
                if not nullable[a]:
                    break
        return out


def compile_grammar(text: str) -> "_core.Grammar":
    """A GBNF grammar's text -> the automaton's rules (shared by many requests). GrammarError (a
    ValueError) says where and why the text cannot be used."""
    if not isinstance(text, str):
        raise GrammarError(f"a grammar must be GBNF text (a str), got {type(text).__name__}")
    if not text.strip():
        raise GrammarError("the grammar is empty")
    p = _Parser(text)
    p.parse()
    p.check_left_recursion()
    classes = [None] * len(p.classes)
    for (negated, ranges), k in p.classes.items():
        classes[k] = (negated, list(ranges))
    try:
        return _core.Grammar(p.rules, classes, p.index["root"])
    except _core.LLMasOSError as e:  # what the parser cannot see: no finite text, too large
        raise GrammarError(str(e)) from None
