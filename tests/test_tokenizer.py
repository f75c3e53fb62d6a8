"""Tokenizer parity: our C++ tokenizers against Hugging Face `tokenizers` (byte-level BPE, on the
real SmolLM2 GGUF) and `sentencepiece` (a small SPM BPE model trained here), on the hard-string
corpus; decode round trips, streaming decode, and malformed tokenizer metadata."""
import os
import random
import unicodedata

import pytest

from llmasos import _core
import hf_reference
from tokenizer_corpus import CORPUS, SPECIAL_TEXT

IM_START, IM_END, ENDOFTEXT = 1, 2, 0  # SmolLM2 control tokens


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def smol(smollm2_gguf):
    return _core.Tokenizer.from_gguf(smollm2_gguf)


@pytest.fixture(scope="module")
def hf_smol(smollm2_gguf):
    """The reference: transformers' tokenizer built from the same GGUF, with the pre-tokenizer
    that tokenizer.ggml.pre = "smollm" names. transformers' GGUF converter ignores that key and
    uses plain ByteLevel; SmolLM2's own tokenizer.json (and llama.cpp's "smollm") first isolates
    each digit (Digits(individual_digits=True)), which differs when 2+ spaces precede a digit."""
    pytest.importorskip("transformers")
    from tokenizers import pre_tokenizers as pt
    tok = hf_reference.load_tokenizer(smollm2_gguf)
    tok.backend_tokenizer.pre_tokenizer = pt.Sequence(
        [pt.Digits(individual_digits=True), pt.ByteLevel(add_prefix_space=False, use_regex=True)])
    return tok


def hf_ids(hf, text, special):
    # special=True: added special tokens in the text are matched; False: plain text.
    return hf(text, add_special_tokens=False, split_special_tokens=not special)["input_ids"]


def gpt2_byte_chars():
    """GPT-2's byte -> printable character map (what byte-level vocabularies are spelled in)."""
    keep = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    extra = [b for b in range(256) if b not in keep]
    m = {b: chr(b) for b in keep}
    m.update({b: chr(256 + i) for i, b in enumerate(extra)})
    return m


# ----------------------------------------------------------------------------- byte-level BPE
def test_corpus_is_large_and_hard():
    assert len(CORPUS) >= 220
    assert "" in CORPUS and any(len(s) > 4000 for s in CORPUS)
    assert any("\u200d" in s for s in CORPUS) and any("\r\n" in s for s in CORPUS)


@pytest.mark.parametrize("special", [False, True])
def test_bpe_ids_match_hf(smol, hf_smol, special):
    mismatches = [(s, smol.encode(s, special=special), hf_ids(hf_smol, s, special))
                  for s in CORPUS]
    mismatches = [m for m in mismatches if m[1] != m[2]]
    assert not mismatches, f"{len(mismatches)}/{len(CORPUS)} differ, first: {mismatches[0]!r:.400}"


@pytest.mark.parametrize("text", [
    " \x16:",        # 0x16 has no token: dropped before merging, so " :" merges (was ["Ġ", ":"])
    "\U00016100's",  # a letter since Unicode 16 (HF's regex engine): then "'s" is a contraction
])
def test_bpe_edge_cases_match_hf(smol, hf_smol, text):
    assert smol.encode(text, special=False) == hf_ids(hf_smol, text, False)


def test_bpe_random_text_matches_hf(smol, hf_smol):
    """Random text built from any characters plus pieces the pre-tokenizers treat specially;
    hypothesis, derandomized. (It found the two cases above.)"""
    from hypothesis import given, settings, strategies as st

    pieces = st.one_of(st.text(st.characters(codec="utf-8"), max_size=12), st.sampled_from(
        [" ", "  ", "\n", "\r\n", "\t", "'s", "'S", "'ll", "1", "12", " 3", "\u00a0", "\u3000", "\ufb01",
         "e\u0301", "\U0001f44d\U0001f3fd", "<|im_start|>", "<|im_end|>", "<|endoftext|>"]))

    @settings(max_examples=3000, derandomize=True, deadline=None, database=None)
    @given(st.lists(pieces, max_size=8).map("".join), st.booleans())
    def check(text, special):
        assert smol.encode(text, special=special) == hf_ids(hf_smol, text, special), repr(text)

    check()


def test_bpe_matches_unpatched_transformers_without_digit_after_spaces(smol, hf_smol, smollm2_gguf):
    """Where no whitespace precedes a number, transformers' own GGUF tokenizer (plain ByteLevel)
    agrees with us too: the only difference is the digit isolation ("  1" -> "  ", "1" for us and
    SmolLM2's tokenizer.json; " ", " 1" for plain ByteLevel)."""
    pytest.importorskip("transformers")
    raw = hf_reference.load_tokenizer(smollm2_gguf)

    def digit_after_spaces(s):
        return any(s[i].isnumeric() and s[i - 1].isspace() for i in range(1, len(s)))
    plain = [s for s in CORPUS if not digit_after_spaces(s)]
    assert len(plain) > 200
    for s in plain:
        assert smol.encode(s) == hf_ids(raw, s, False), s


def test_special_tokens(smol):
    text = "<|im_start|>user\nhi<|im_end|>"
    ids = smol.encode(text, special=True)
    assert ids[0] == IM_START and ids[-1] == IM_END
    plain = smol.encode(text, special=False)
    assert IM_START not in plain and IM_END not in plain
    assert smol.decode(plain) == text                   # plain text round-trips
    assert smol.decode(ids, special=True) == text       # control tokens rendered on request
    assert smol.decode(ids) == "user\nhi"               # and dropped otherwise
    assert smol.encode("", special=True) == []
    assert smol.encode("hi", add_bos=True)[0] == smol.bos_id == IM_START
    assert not smol.add_bos and smol.eos_id == IM_END and smol.n_vocab == 49152


def test_token_properties(smol):
    assert smol.is_eog(IM_END) and smol.is_eog(ENDOFTEXT) and not smol.is_eog(IM_START)
    assert not smol.is_eog(100) and not smol.is_eog(-1) and not smol.is_eog(10**6)
    assert smol.token_text(IM_START) == "<|im_start|>"
    assert smol.token_bytes(IM_START) == b"" and smol.token_bytes(IM_START, special=True) == b"<|im_start|>"
    space_tok = smol.encode(" ")[0]
    assert smol.token_text(space_tok) == "Ġ" and smol.token_bytes(space_tok) == b" "
    for bad in (-1, smol.n_vocab, 2**31 - 1):
        with pytest.raises(_core.InvalidArgumentError):
            smol.decode([bad])
        with pytest.raises(_core.InvalidArgumentError):
            smol.token_bytes(bad)


@pytest.mark.parametrize("special", [False, True])
def test_bpe_decode_matches_hf(smol, hf_smol, special):
    for s in CORPUS + SPECIAL_TEXT:
        ids = smol.encode(s, special=special)
        assert smol.decode(ids, special=special) == hf_smol.decode(ids, skip_special_tokens=not special), s


def test_bpe_round_trip(smol):
    vocab = {smol.token_text(i) for i in range(smol.n_vocab)}
    chars = gpt2_byte_chars()
    missing = {b for b in range(256) if chars[b] not in vocab}  # bytes this vocabulary cannot spell
    checked = 0
    for s in CORPUS:
        if any(b in missing for b in s.encode()):
            continue
        assert smol.decode(smol.encode(s)) == s, s
        checked += 1
    assert checked >= len(CORPUS) - 3


def test_decode_repairs_broken_utf8_like_hf(smol, hf_smol):
    ids = smol.encode("🤖é中")
    assert len(ids) > 3
    rng = random.Random(0)
    for _ in range(200):
        sub = [rng.choice(ids) for _ in range(rng.randint(1, 6))]
        assert smol.decode(sub) == hf_smol.decode(sub), sub
        raw = b"".join(smol.token_bytes(i) for i in sub)
        assert smol.decode(sub) == raw.decode("utf-8", errors="replace")


# ----------------------------------------------------------------------------- streaming
def stream(tok, ids, special=False):
    dec = _core.StreamDecoder(tok, special)
    pieces = [dec.push(i) for i in ids]
    pieces.append(dec.flush())
    return pieces


@pytest.mark.parametrize("special", [False, True])
def test_stream_decoder_joins_to_decode(smol, special):
    for s in CORPUS:
        ids = smol.encode(s, special=special)
        pieces = stream(smol, ids, special)
        assert "".join(pieces) == smol.decode(ids, special=special), s
        if "\ufffd" not in s:
            assert not any("\ufffd" in p for p in pieces), s  # no character split across pieces


def test_stream_decoder_holds_split_emoji(smol):
    ids = smol.encode("🤖")
    assert len(ids) > 1  # the emoji is spelled with several byte tokens
    dec = _core.StreamDecoder(smol)
    assert [dec.push(i) for i in ids[:-1]] == [""] * (len(ids) - 1)
    assert dec.push(ids[-1]) == "🤖" and dec.flush() == ""
    dec = _core.StreamDecoder(smol)
    dec.push(ids[0])
    assert dec.flush() == "\ufffd"  # an unfinished character is repaired at the end


def test_stream_decoder_keeps_tokenizer_alive(smollm2_gguf):
    dec = _core.StreamDecoder(_core.Tokenizer.from_gguf(smollm2_gguf))
    import gc
    gc.collect()
    assert dec.push(28120) + dec.flush() == "hello"


# ----------------------------------------------------------------------------- pre-tokenizers
# The regexes the pre-tokenizer names stand for (as in llama.cpp and the models' tokenizer.json).
GPT2_RE = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
LLAMA3_RE = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
             r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_RE = LLAMA3_RE.replace(r"\p{N}{1,3}", r"\p{N}")


@pytest.fixture(scope="module")
def smol_spec(smollm2_gguf):
    return _core.TokenizerSpec.from_gguf(smollm2_gguf)


@pytest.mark.parametrize("pre,regex", [("llama-bpe", LLAMA3_RE), ("qwen2", QWEN2_RE),
                                       ("gpt2", GPT2_RE), ("no-such-pre", GPT2_RE)])
def test_pre_tokenizers_match_hf_regex(smol_spec, pre, regex):
    """Our hand-written matchers against HF's regex engine, on the SmolLM2 vocabulary."""
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers import models, pre_tokenizers as pt
    spec = smol_spec
    spec.pre = pre
    ours = _core.Tokenizer(spec)
    vocab = {t: i for i, t in enumerate(spec.tokens)}
    hf = tokenizers.Tokenizer(models.BPE(vocab, [tuple(m.split(" ", 1)) for m in spec.merges]))
    hf.pre_tokenizer = pt.Sequence([pt.Split(tokenizers.Regex(regex), behavior="isolated"),
                                    pt.ByteLevel(add_prefix_space=False, use_regex=False)])
    bad = [s for s in CORPUS if ours.encode(s) != hf.encode(s, add_special_tokens=False).ids]
    assert not bad, f"{len(bad)} differ, first {bad[0]!r:.200}"


# ----------------------------------------------------------------------------- SentencePiece
SPM_TRAIN_WORDS = ("the of and to in is was for on that with as by at from his her it an were are "
                   "which this be or has had not but first one their its new after who they have "
                   "two been other when there all during into school time may years more most only "
                   "over city some world would where later up such used many can state about "
                   "national out known university united then made").split()


def spm_training_text(n_lines=3000):
    rng = random.Random(1)
    extra = ["don't", "it's", "3.14", "1,000", "hello", "world", "Hello", "World", "café", "naïve",
             "über", "Привет", "мир", "你好", "世界", "  ", "\t", "(x)", "[y]", "a+b=c", "😀"]
    lines = []
    for _ in range(n_lines):
        words = [rng.choice(SPM_TRAIN_WORDS if rng.random() < 0.85 else extra)
                 for _ in range(rng.randint(3, 15))]
        lines.append(" ".join(words).capitalize() + rng.choice([".", "!", "?", ",", ""]))
    return lines


def write_tokenizer_gguf(path, tokens, scores=None, types=None, model="llama", merges=None,
                         extra=None):
    gguf = pytest.importorskip("gguf")
    w = gguf.GGUFWriter(str(path), arch="llama")
    if model is not None:
        w.add_tokenizer_model(model)
    if tokens is not None:
        w.add_array("tokenizer.ggml.tokens", tokens)
    if scores is not None:
        w.add_token_scores(scores)
    if types is not None:
        w.add_token_types(types)
    if merges is not None:
        w.add_token_merges(merges)
    for key, value in (extra or {}).items():
        if isinstance(value, bool):
            w.add_bool(key, value)
        elif isinstance(value, int):
            w.add_uint32(key, value)
        else:
            w.add_string(key, value)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return str(path)


@pytest.fixture(scope="module")
def spm_pair(tmp_path_factory):
    """A SentencePiece BPE model (byte fallback, no normalisation) and the same vocabulary as a
    tokenizer-only GGUF with tokenizer.ggml.model = "llama"."""
    spm = pytest.importorskip("sentencepiece")
    d = tmp_path_factory.mktemp("spm")
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(spm_training_text()), model_prefix=str(d / "m"), vocab_size=800,
        model_type="bpe", byte_fallback=True, character_coverage=0.9995,
        normalization_rule_name="identity", remove_extra_whitespaces=False, add_dummy_prefix=True,
        minloglevel=2)
    sp = spm.SentencePieceProcessor(model_file=str(d / "m.model"))
    tokens, scores, types = [], [], []
    for i in range(sp.get_piece_size()):
        tokens.append(sp.id_to_piece(i))
        scores.append(sp.get_score(i))
        types.append(3 if sp.is_control(i) else 2 if sp.is_unknown(i) else 6 if sp.is_byte(i)
                     else 5 if sp.is_unused(i) else 1)
    path = write_tokenizer_gguf(d / "spm.gguf", tokens, scores, types, extra={
        "tokenizer.ggml.bos_token_id": sp.bos_id(), "tokenizer.ggml.eos_token_id": sp.eos_id(),
        "tokenizer.ggml.unknown_token_id": sp.unk_id()})
    return sp, _core.Tokenizer.from_gguf(path)


def test_spm_ids_match_sentencepiece(spm_pair):
    sp, tok = spm_pair
    assert tok.add_bos and tok.bos_id == sp.bos_id()
    bad = [s for s in CORPUS if tok.encode(s) != sp.encode(s)]
    assert not bad, f"{len(bad)}/{len(CORPUS)} differ, first {bad[0]!r:.200}"
    assert tok.encode("hello world", add_bos=True) == [sp.bos_id()] + sp.encode("hello world")
    # Byte fallback really happened: characters outside the trained vocabulary.
    assert any(tok.token_text(i).startswith("<0x") for i in tok.encode("漢字 🤖"))


def test_spm_random_text_matches_sentencepiece(spm_pair):
    """Random text (any characters, the training words, whitespace runs) against sentencepiece
    itself; hypothesis, derandomized."""
    from hypothesis import given, settings, strategies as st

    sp, tok = spm_pair
    pieces = st.one_of(st.text(st.characters(codec="utf-8"), max_size=10),
                       st.sampled_from(SPM_TRAIN_WORDS + [" ", "  ", "\n", "\t", "don't", "café", "\u2581", "😀"]))

    @settings(max_examples=3000, derandomize=True, deadline=None, database=None)
    @given(st.lists(pieces, max_size=8).map("".join))
    def check(text):
        assert tok.encode(text) == sp.encode(text), repr(text)

    check()


def test_spm_decode_matches_sentencepiece(spm_pair):
    sp, tok = spm_pair
    for s in CORPUS:
        ids = tok.encode(s)
        assert tok.decode(ids) == sp.decode(ids), s
        with_bos = [tok.bos_id] + ids
        assert tok.decode(with_bos) == sp.decode(with_bos), s
        if "\x00" not in s:
            assert tok.decode(ids) == s, s
        assert "".join(stream(tok, with_bos)) == tok.decode(with_bos), s


# ----------------------------------------------------------------------------- malformed metadata
def test_malformed_tokenizer_metadata(tmp_path):
    toks = ["<unk>", "<s>", "</s>", "a", "b", "ab"]
    ok = write_tokenizer_gguf(tmp_path / "ok.gguf", toks, [0.0] * 6, [2, 3, 3, 1, 1, 1])
    assert _core.Tokenizer.from_gguf(ok).encode("ab") == [_core.Tokenizer.from_gguf(ok).n_vocab - 1]
    cases = {
        "no_tokens": (dict(tokens=None), "tokenizer.ggml.tokens"),
        "int_tokens": (dict(tokens=[1, 2, 3]), "tokenizer.ggml.tokens"),
        "short_scores": (dict(scores=[0.0] * 5), "tokenizer.ggml.scores"),
        "long_types": (dict(types=[1] * 7), "tokenizer.ggml.token_type"),
        "bad_model": (dict(model="bert"), "tokenizer.ggml.model"),
        "no_model": (dict(model=None), "tokenizer.ggml.model"),
        "bad_merge": (dict(model="gpt2", merges=["ab"]), "tokenizer.ggml.merges"),
        "bos_range": (dict(extra={"tokenizer.ggml.bos_token_id": 6}), "bos_token_id"),
    }
    for name, (kw, key) in cases.items():
        args = dict(tokens=toks, scores=[0.0] * 6, types=[2, 3, 3, 1, 1, 1])
        args.update(kw)
        path = write_tokenizer_gguf(tmp_path / f"{name}.gguf", **args)
        with pytest.raises(_core.ModelFormatError, match=key):
            _core.Tokenizer.from_gguf(path)


def test_spec_validation_from_python():
    spec = _core.TokenizerSpec()
    with pytest.raises(_core.ModelFormatError):
        _core.Tokenizer(spec)  # empty vocabulary
    spec.model, spec.tokens, spec.merges = "gpt2", ["a", "b", "ab"], ["a b"]
    assert _core.Tokenizer(spec).encode("abba") == [2, 1, 0]
    spec.eos_id = 3
    with pytest.raises(_core.ModelFormatError, match="eos_token_id"):
        _core.Tokenizer(spec)


def test_long_text_encodes_without_gil_issues(smol):
    text = ("Unicode ünïcödé 中文 🤖 " * 3000)
    ids = smol.encode(text)
    assert smol.decode(ids) == text
    assert unicodedata.is_normalized("NFC", smol.decode(smol.encode("é")))
