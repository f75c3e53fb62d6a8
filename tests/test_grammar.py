"""GBNF grammars (gbnf.py, csrc/engine/grammar.cc): the parser's errors, the automaton against
Python's re on random regular grammars and against hand checks on nested ones, the token mask
against feeding every token of the real vocabulary, and generation held to a grammar."""
import json
import random
import re

import pytest

from llmasos import LLM, SamplingParams, _core
from llmasos.gbnf import GrammarError, compile_grammar
from token_masks import fed, token_pieces


def scan(grammar, text):
    """(bytes taken, complete, nothing can follow) for the UTF-8 of text (or bytes)."""
    g = grammar if isinstance(grammar, _core.Grammar) else compile_grammar(grammar)
    return _core.grammar_scan(g, text if isinstance(text, bytes) else text.encode())


def accepts(grammar, text):
    data = text.encode()
    n, complete, _ = scan(grammar, data)
    return n == len(data) and complete


# ---- the parser -----------------------------------------------------------------------------

@pytest.mark.parametrize("grammar, good, bad", [
    ('root ::= "yes" | "no"', ["yes", "no"], ["", "y", "yesno", "No"]),
    ('root ::= [a-c]+ [^a-c]', ["abx", "c\u00e9"], ["ab", "x", "abca"]),
    ('root ::= . "!"', ["a!", "\U0001F600!", "\n!"], ["!", "ab!"]),
    ('root ::= "a"{2} "b"{1,2} "c"{2,} "d"{,1}', ["aabcc", "aabbcccd"], ["abcc", "aabbbcc", "aabc", "aabccdd"]),
    ('root ::= ("x" | "y")* "."', [".", "xyx."], ["x", "xz."]),
    ('root ::= x? "!"\nx ::= "q"', ["!", "q!"], ["qq!"]),
    ('# a comment\nroot ::= a b # another\n\na ::= "\\x41\\u00e9" | "\\U0001F600"\nb ::= "\\n\\t\\"\\\\\\[\\]\\-"',
     ["A\u00e9\n\t\"\\[]-", "\U0001F600\n\t\"\\[]-"], ["A\u00e9"]),
    ('root ::= (\n  "a" |\n  "b"\n) "c"', ["ac", "bc"], ["c"]),
    ('root ::= "a" |\n  "b"', ["a", "b"], ["ab"]),
    ('root ::= [\\]\\-a]', ["]", "-", "a"], ["b"]),
    ('root ::= [^\\n]+ "\\n"', ["any thing \u00e9\n"], ["\n", "a\nb\n"]),
    ('root ::= "" "a" ""', ["a"], [""]),
    ('root ::= UPPER-case_1\nUPPER-case_1 ::= "ok"', ["ok"], ["o"]),
])
def test_grammar_accepts_what_it_should(grammar, good, bad):
    for s in good:
        assert accepts(grammar, s), s
    for s in bad:
        assert not accepts(grammar, s), s


@pytest.mark.parametrize("grammar, why", [
    ("", "empty"),
    ('a ::= "x"', "no 'root' rule"),
    ("root ::= x", "rule 'x' is used but not defined"),
    ('root ::= "x"\nroot ::= "y"', "defined twice"),
    ('root ::= root "a" | "b"', "left recursion in rule 'root'"),
    ('root ::= a "x"\na ::= b\nb ::= "" | a', "left recursion"),
    ('root ::= ("" | "a")*', "left recursion"),
    ('root ::= "a', "unterminated literal"),
    ("root ::= [a-", "unterminated"),
    ("root ::= [z-a]", "runs backwards"),
    ('root ::= "\\q"', "unknown escape"),
    ('root ::= "\\x4"', "needs 2 hex digits"),
    ('root ::= "\\U00110000"', "beyond Unicode"),
    ("root ::= <think>", "token references"),
    ("root ::= <[12]>", "token references"),
    ('root ::= "a" )', "unexpected ')'"),
    ('root ::= ("a"', "expected ')'"),
    ("root ::= *", "nothing before it"),
    ('root ::= "a"{3,1}', "maximum below its minimum"),
    ('root ::= "a"{20000}', "above"),
    ('root ::= "a"{2', "expected '}'"),
    ("root = x", "expected '::='"),
    ('root ::= a\na ::= "x" a', "derives no finite text"),
    ("root ::= [^\\x00-\\U0010FFFF]", "derives no finite text"),
])
def test_bad_grammars_say_why(grammar, why):
    with pytest.raises(GrammarError, match=re.escape(why)):
        compile_grammar(grammar)


def test_large_and_branching_grammars_keep_every_parse():
    """Many alternatives at once (a choice of 2000 words; a star over 1100), grammars with many
    open parses, deep nesting and long chains of rules: every sentence is taken, and "complete"
    is never lost."""
    words = [f"w{i:04d}" for i in range(2000)]
    g = compile_grammar('root ::= "A: " word "."\nword ::= ' + " | ".join(f'"{w}"' for w in words))
    assert all(accepts(g, f"A: {w}.") for w in words[::37] + words[-3:])
    star = compile_grammar('root ::= ("a" | "b" | ' + " | ".join(f'"x{i}"' for i in range(1100)) + ")*")
    assert scan(star, "")[1] and accepts(star, "ab") and accepts(star, "x1099a")
    assert scan(compile_grammar('root ::= ("a" | "aa"){0,600}'), "a" * 900)[:2] == (900, True)
    branching = compile_grammar('root ::= x\nx ::= "a" x "b" | "a" x "c" | ""')
    # 2^9 parses open after nine a's (each a's closer is still b or c); up to 4096 are kept.
    assert accepts(branching, "a" * 9 + "c" * 9) and accepts(branching, "aaabcb")
    nest = compile_grammar('root ::= "(" root ")" | "[" x "]"\nx ::= y "!"\ny ::= "a"')
    assert accepts(nest, "(" * 1500 + "[a!]" + ")" * 1500)
    chain = compile_grammar("root ::= r0\n" + "".join(f'r{i} ::= r{i + 1} "x"\n' for i in range(1100))
                            + 'r1100 ::= "a"\n')
    assert accepts(chain, "a" + "x" * 1100)
    tail = compile_grammar("root ::= r0\n" + "".join(f"r{i} ::= r{i + 1}\n" for i in range(60000)) + 'r60000 ::= "a"\n')
    assert accepts(tail, "a")


@pytest.mark.parametrize("grammar, good, bad", [
    ('root ::= "a"+?', ["", "a", "aaa"], ["b"]),
    ('root ::= "a"*?', ["", "aa"], ["b"]),
    ('root ::= "a"{2,3}?', ["", "aa", "aaa"], ["a", "aaaa"]),
    ('root ::= "a"{2}{3}', ["a" * 6], ["a" * 4, "a" * 7]),
])
def test_repetitions_repeat_again(grammar, good, bad):
    for s in good:
        assert accepts(grammar, s), s
    for s in bad:
        assert not accepts(grammar, s), s


def test_limits_are_clear_errors():
    with pytest.raises(GrammarError, match="nested deeper than 1000"):
        compile_grammar("root ::= " + "(" * 30000 + '"a"' + ")" * 30000)
    with pytest.raises(GrammarError, match="rules deep"):
        compile_grammar("root ::= r0\n" + "".join(f'r{i} ::= r{i + 1} "x"\n' for i in range(20000)) + 'r20000 ::= "a"\n')


def test_error_names_line_and_column():
    with pytest.raises(GrammarError, match="line 3, column 13"):
        compile_grammar('root ::= a\na ::= "x"\nb ::= "y" | * q')


def test_unproductive_alternatives_are_left_out():
    # "b" can never finish, so only "c" remains: the output never dead-ends in it.
    g = 'root ::= "a" b | "a" "c"\nb ::= "x" b'
    assert accepts(g, "ac")
    assert scan(g, "ax")[0] == 1


# ---- the automaton against Python's re on random regular grammars ----------------------------

ALPHABET = ["a", "b", "c", "\u00e9", "\u4e2d", "\U0001F600", "\n"]


def _esc(ch):
    return {"\n": "\\n", '"': '\\"', "\\": "\\\\"}.get(ch, ch)


def random_item(rng, depth):
    """(gbnf, regex) of a random item: literal, class, any, group of alternatives."""
    k = rng.randrange(5 if depth < 3 else 3)
    if k == 0:
        s = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 3)))
        return '"' + "".join(_esc(c) for c in s) + '"', "(?:" + re.escape(s) + ")"
    if k == 1:
        chars = rng.sample(ALPHABET, rng.randint(1, 3))
        neg = rng.random() < 0.3
        body = "".join(_esc(c) for c in chars)
        return f"[{'^' if neg else ''}{body}]", f"[{'^' if neg else ''}{''.join(re.escape(c) for c in chars)}]"
    if k == 2:
        return ".", "(?s:.)"
    alts = [random_seq(rng, depth + 1) for _ in range(rng.randint(1, 3))]
    return "(" + " | ".join(a for a, _ in alts) + ")", "(?:" + "|".join(b for _, b in alts) + ")"


def random_seq(rng, depth=0):
    parts = []
    for _ in range(rng.randint(1, 3)):
        g, r = random_item(rng, depth)
        q = rng.randrange(7)
        if q == 1:
            g, r = g + "*", r + "*"
        elif q == 2:
            g, r = g + "+", r + "+"
        elif q == 3:
            g, r = g + "?", r + "?"
        elif q == 4:
            m = rng.randint(0, 2)
            n = m + rng.randint(0, 2)
            g, r = g + f"{{{m},{n}}}", r + f"{{{m},{n}}}"
        parts.append((g, r))
    return " ".join(g for g, _ in parts), "".join(r for _, r in parts)


def test_random_regular_grammars_agree_with_re():
    rng = random.Random(11)
    checked = 0
    compiled = 0
    for _ in range(150):
        g_text, rx = random_seq(rng)
        try:
            g = compile_grammar("root ::= " + g_text)
        except GrammarError as e:  # a repetition of what can be empty, as (x?)*: llama.cpp refuses it too
            assert "left recursion" in str(e)
            continue
        compiled += 1
        pattern = re.compile(rx)
        samples = ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 6))) for _ in range(60)]
        # Strings the regex matches, found by walking: keep a few that are in the language.
        for s in samples:
            full = pattern.fullmatch(s) is not None
            assert accepts(g, s) == full, (g_text, s)
            if full:  # every prefix of a sentence is taken whole (no dead end before its end)
                data = s.encode()
                for cut in range(len(data) + 1):
                    assert scan(g, data[:cut])[0] == cut, (g_text, s, cut)
            checked += full
    assert checked > 50 and compiled > 100


# ---- non-regular grammars --------------------------------------------------------------------

ARITH = 'root ::= expr\nexpr ::= term (("+" | "*") term)*\nterm ::= [0-9]+ | "(" expr ")"'


def test_nested_grammar_matches_a_hand_check():
    rng = random.Random(5)

    def balanced_ok(s):
        try:
            return re.fullmatch(r"[0-9+*()]+", s) is not None and eval(s) is not None  # noqa: S307
        except SyntaxError:
            return False

    for _ in range(3000):
        s = "".join(rng.choice("12+*()") for _ in range(rng.randint(1, 9)))
        # Python's grammar also allows "+1" (unary) and "()"-free forms alike; hold to ours.
        ours = re.fullmatch(r"[0-9()+*]+", s) and not re.search(r"(^|[(+*])[+*]|[+*]($|\))|\(\)|\d\(|\)\d|\)\(", s)
        assert accepts(ARITH, s) == bool(ours and balanced_ok(s)), s
    deep = "(" * 100 + "1" + ")" * 100
    assert accepts(ARITH, deep)
    assert not accepts(ARITH, deep + ")")


JSON_GBNF = r'''
root   ::= object
value  ::= object | array | string | number | ("true" | "false" | "null") ws

object ::=
  "{" ws (
            string ":" ws value
    ("," ws string ":" ws value)*
  )? "}" ws

array  ::=
  "[" ws (
            value
    ("," ws value)*
  )? "]" ws

string ::=
  "\"" (
    [^"\\\x7F\x00-\x1F] |
    "\\" (["\\bfnrt] | "u" [0-9a-fA-F]{4}) # escapes
  )* "\"" ws

number ::= ("-"? ([0-9] | [1-9] [0-9]{0,15})) ("." [0-9]+)? ([eE] [-+]? [0-9] [1-9]{0,15})? ws

# Optional space: by convention, applied in this grammar after literal chars when allowed
ws ::= | " " | "\n" [ \t]{0,20}
'''


def test_llama_cpp_json_grammar():
    """llama.cpp's own grammars/json.gbnf takes JSON documents and refuses broken ones."""
    g = compile_grammar(JSON_GBNF)
    docs = [{"a": [1, 2.5, -3e5, True, None], "b": {"c": "\u00e9\U0001F600 \"q\" \\"}}, {}, {"x": []}]
    for d in docs:
        assert accepts(g, json.dumps(d)), d
        assert accepts(g, json.dumps(d, indent=2)), d
    for bad in ['{"a" 1}', '{"a": [1,]}', '[1]', '{"a": tru}', '{"a": "\x01"}', '{"a": 01}', '{} x']:
        assert not accepts(g, bad), bad


# ---- the token mask --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tok(smollm2_gguf):
    return _core.Tokenizer.from_gguf(smollm2_gguf)


def masks_along(tok, g, text, points=None):
    """(the masks along `text`'s tokens on one constraint, what feeding every token gives at each
    point: the tokens the automaton takes whole, plus end tokens where the text is complete),
    at every point or at `points` (indices into the tokens)."""
    pieces, eog = token_pieces(tok), [i for i in range(len(tok)) if tok.is_eog(i)]
    ids = tok.encode(text, False, False)
    assert tok.decode(ids) == text
    masks = _core.grammar_masks(tok, g, ids)
    data = [b""]
    for i in ids:
        data.append(data[-1] + tok.token_bytes(i))
    for k in range(len(ids) + 1) if points is None else sorted(set(points(len(ids)))):
        want = fed(pieces, data[k], lambda d: scan(g, d)) + (eog if scan(g, data[k])[1] else [])
        yield k, data[k], masks[k], sorted(want)


def test_mask_equals_feeding_every_token(tok):
    """After each prefix, the mask allows exactly the tokens whose bytes the automaton takes
    whole (partial UTF-8 included), with end tokens only where the text is complete."""
    grammar = 'root ::= item ("," item)* "."\nitem ::= "caf\u00e9" | [a-z]+ | "\U0001F600"{1,2} | "\u4e2d\u6587"'
    g = compile_grammar(grammar)
    for k, data, mask, want in masks_along(tok, g, "caf\u00e9,abc,\U0001F600\U0001F600,\u4e2d\u6587."):
        assert mask == want, (k, data)
    assert scan(g, data)[2]  # the "." ends it: nothing can follow


def test_json_grammar_masks_along_a_document(tok):
    """Masks along a JSON document under llama.cpp's json.gbnf, made on one constraint (its state
    table and mask cache warm, states recurring inside strings and lists), equal feeding every
    token at a spread of points."""
    text = '{"name": "Mia \u00e9", "tags": ["a b", "c d", "e f"], "n": [1, 22, -3.5e2], "ok": true}'
    points = list(masks_along(tok, compile_grammar(JSON_GBNF), text, lambda n: [*range(0, n + 1, 4), n]))
    for k, data, mask, want in points:
        assert mask == want, (k, data)


# ---- generation ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def llm(smollm2_gguf):
    with LLM.from_pretrained(smollm2_gguf, n_ctx=1024, threads=2) as m:
        yield m


LIST = 'root ::= ("- " item "\\n"){3}\nitem ::= [A-Z] [a-z ]{2,30}'
CHOICE = 'root ::= ("yes" | "no") "."'


@pytest.mark.parametrize("grammar", [LIST, CHOICE, ARITH + ' "="', JSON_GBNF])
def test_generation_follows_the_grammar(llm, grammar):
    g = compile_grammar(grammar)
    prompts = ["List three animals:", "Is the sky blue?", "Compute 2+3:", "A JSON object about a cat:"]
    for params in (SamplingParams(max_tokens=80, grammar=g),
                   SamplingParams(max_tokens=80, grammar=grammar, temperature=1.0, seed=7)):
        for out in llm.generate(prompts, params):
            n, complete, _ = scan(g, out.text)
            assert n == len(out.text.encode()), out.text  # every byte fits
            if out.finish_reason == "stop":
                assert complete, out.text
    done = llm.generate("Is the sky blue? Answer yes or no.", SamplingParams(max_tokens=20, grammar=CHOICE))[0]
    assert done.finish_reason == "stop" and done.text in ("yes.", "no.")


def test_grammar_output_is_the_same_alone_batched_and_streamed(llm):
    params = SamplingParams(max_tokens=40, grammar=LIST, temperature=0.8, seed=3)
    alone = llm.generate("List three animals:", params)[0].text
    batch = llm.generate(["List three colors:", "List three animals:", "Hi"], params)
    assert batch[1].text == alone
    streamed = "".join(llm.stream("List three animals:", params))
    assert streamed == alone


def test_grammar_beside_another_constraint_is_refused(llm):
    with pytest.raises(ValueError, match="give one of"):
        llm.generate("x", SamplingParams(grammar=CHOICE, json_object=True))
    with pytest.raises(GrammarError):
        llm.generate("x", SamplingParams(grammar="root ::= nope"))
