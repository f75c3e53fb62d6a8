"""GBNF grammars, llama.cpp's format (its grammars/README.md), for SamplingParams.grammar, llama.cpp
server's and llama-cpp-python's `grammar` field and vLLM's `guided_grammar`:

    root ::= ("- " item)+          # the whole output; a rule per line
    item ::= [^\\n]+ "\\n"          # classes [a-z] [^...], literals "...", any character .

The text is parsed and checked in C++ (csrc/engine/gbnf_parse.h says what is supported: llama.cpp's
syntax; token references and left recursion are refused), the same parser the C and C++ APIs use,
into the rules the automaton runs (csrc/engine/grammar.h)."""
from __future__ import annotations

import functools

from ._core_loader import _core


class GrammarError(ValueError):
    """A grammar that cannot be used: where (line and column) and why."""


def compile_grammar(text: str) -> "_core.Grammar":
    """A GBNF grammar's text -> the automaton's rules (shared by many requests). GrammarError (a
    ValueError) says where and why the text cannot be used."""
    if not isinstance(text, str):
        raise GrammarError(f"a grammar must be GBNF text (a str), got {type(text).__name__}")
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise GrammarError(f"grammar: the text holds a lone surrogate at index {e.start}") from None
    return _parsed(data)


@functools.lru_cache(maxsize=8)
def _parsed(data: bytes) -> "_core.Grammar":
    """One grammar object per text among the recent ones: requests that send the same grammar
    share it, and with it the masks it has made (a grammar keeps them per vocabulary)."""
    try:
        return _core.parse_gbnf(data)
    except _core.InvalidArgumentError as e:
        raise GrammarError(str(e)) from None
