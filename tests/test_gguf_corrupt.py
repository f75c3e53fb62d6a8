"""Hand-built corrupt GGUF files: each must raise ModelFormatError naming the problem, in-process
and in a subprocess (which must not die of a signal or hang). Model-level corruptions (valid GGUF,
inconsistent model) go through _core.Model; random header mutations go through the subprocess."""
import os
import random
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from llmasos import _core
from gguf_factory import F16, F32, Q8_0, GgufBuilder, T, Val, make_tiny_llama

PROBE = Path(__file__).with_name("corrupt_probe.py")
U64 = 2**64 - 1


def base(version=3) -> GgufBuilder:
    """A small valid file: 6 kvs (string, u32 alignment, u32, string array, nested array, string) and
    3 tensors (F32 [8,2] 64 B, Q8_0 [64,2] 136 B, F16 [4] 8 B)."""
    b = GgufBuilder(version=version)
    b.kv("general.architecture", "llama")
    b.kv("general.alignment", Val(T.UINT32, 32))
    b.kv("x.count", Val(T.UINT32, 7))
    b.kv("x.words", Val.array(T.STRING, ["alpha", "beta", "gamma"]))
    b.kv("x.nested", Val.array(T.ARRAY, [Val.array(T.INT32, [1, 2, 3])]))
    b.kv("x.name", "a name long enough to be cut in the middle")
    b.tensor("a.weight", [8, 2], F32)
    b.tensor("b.weight", [64, 2], Q8_0)
    b.tensor("c.weight", [4], F16)
    return b


def edit(fn):
    """Case: apply fn to a fresh base builder, then build."""
    def make():
        b = base()
        fn(b)
        return b.build()
    return make


def cut(at):
    """Case: the base file truncated at at(layout)."""
    def make():
        b = base()
        raw = b.build()
        return raw[:at(b.layout)]
    return make


def poke(at, fmt, value):
    """Case: the base file with struct `fmt` written at at(layout)."""
    def make():
        b = base()
        raw = bytearray(b.build())
        struct.pack_into(fmt, raw, at(b.layout), value)
        return bytes(raw)
    return make


def set_tensor(i, **fields):
    def fn(b):
        for k, v in fields.items():
            setattr(b.tensors[i], k, v)
    return fn


def nested(depth):
    v = Val.array(T.UINT8, [1])
    for _ in range(depth - 1):
        v = Val.array(T.ARRAY, [v])
    return v


# name -> (bytes factory, regex the message must match)
CASES = {
    "empty_file": (lambda: b"", "truncated"),
    "trunc_magic": (cut(lambda L: 3), "truncated"),
    "trunc_version": (cut(lambda L: 6), "truncated"),
    "trunc_tensor_count": (cut(lambda L: 12), "truncated"),
    "trunc_kv_count": (cut(lambda L: 20), "truncated|cannot fit"),
    "trunc_after_counts": (cut(lambda L: 24), "cannot fit|truncated"),
    "trunc_key_length": (cut(lambda L: L["kv"] + 4), "truncated|cannot fit"),
    "trunc_mid_key": (cut(lambda L: L["kv"] + 12), "truncated|exceeds|cannot fit"),
    "trunc_mid_string_value": (cut(lambda L: L["kv_ends"][5] - 9), "key 'x.name': string length 42 exceeds"),
    "trunc_mid_u32_value": (cut(lambda L: L["kv_ends"][2] - 2), "reading key 'x.count'"),
    "trunc_mid_string_array": (cut(lambda L: L["kv_ends"][3] - 3), r"key 'x.words'\[2\]"),
    "trunc_mid_nested_array": (cut(lambda L: L["kv_ends"][4] - 5), r"key 'x.nested'\[0\]"),
    "trunc_before_tensor_infos": (cut(lambda L: L["tensor_info"]), "truncated|cannot fit"),
    "trunc_mid_tensor_name": (cut(lambda L: L["tensor_info"] + 10), "exceeds|truncated|cannot fit"),
    "trunc_mid_tensor_dims": (cut(lambda L: L["tensor_info_ends"][0] - 16), "truncated|cannot fit"),
    "trunc_mid_tensor_offset": (cut(lambda L: L["tensor_info_ends"][2] - 3), "truncated"),
    "trunc_at_header_end": (cut(lambda L: L["header_end"]), "past the end"),
    "trunc_mid_data": (cut(lambda L: L["data"] + 100), "past the end"),
    "trunc_last_byte": (cut(lambda L: L["end"] - 1), "past the end"),
    "bad_magic": (poke(lambda L: 0, "<4s", b"GGUG"), "magic"),
    "ggml_magic": (poke(lambda L: 0, "<4s", b"lmgg"), "magic"),
    "version_0": (poke(lambda L: 4, "<I", 0), "version 0"),
    "version_1": (poke(lambda L: 4, "<I", 1), "version 1"),
    "version_4": (poke(lambda L: 4, "<I", 4), "version 4"),
    "version_huge": (poke(lambda L: 4, "<I", 0xFFFFFFFF), "version"),
    "version_big_endian": (poke(lambda L: 4, ">I", 3), "big-endian"),
    "tensor_count_huge": (poke(lambda L: 8, "<Q", 2**62), "tensor count"),
    "tensor_count_max": (poke(lambda L: 8, "<Q", U64), "tensor count"),
    "tensor_count_plus_one": (poke(lambda L: 8, "<Q", 4), "."),
    "kv_count_huge": (poke(lambda L: 16, "<Q", 2**63), "metadata count"),
    "kv_count_plus_one": (poke(lambda L: 16, "<Q", 7), "."),
    "key_length_huge": (poke(lambda L: L["kv"], "<Q", U64), "string length"),
    "key_length_past_end": (edit(lambda b: b.kvs.insert(0, (struct.pack("<Q", 10**6) + b"k", 8, b""))),
                            "string length"),
    "empty_key": (edit(lambda b: b.kv("", 1)), "empty key"),
    "string_value_length_huge": (edit(lambda b: b.set_kv("general.architecture",
                                                         Val(T.STRING, "llama", str_len=2**63))),
                                 "string length"),
    "string_in_array_length_huge": (edit(lambda b: b.kv("y", Val(T.ARRAY, elem_type=T.STRING, raw=(
        struct.pack("<IQ", T.STRING, 2) + struct.pack("<Q", 3) + b"abc" + struct.pack("<Q", U64))))),
        "string length"),
    "array_length_huge_u8": (edit(lambda b: b.kv("y", Val.array(T.UINT8, [1, 2], count=2**62))),
                             "array length"),
    "array_length_huge_u64": (edit(lambda b: b.kv("y", Val.array(T.UINT64, [1], count=2**60 + 1))),
                              "array length"),
    "array_length_huge_strings": (edit(lambda b: b.kv("y", Val.array(T.STRING, ["a"], count=U64))),
                                  "array length"),
    "array_length_huge_nested": (edit(lambda b: b.kv("y", Val.array(T.ARRAY, [], count=2**40))),
                                 "array length"),
    "array_length_plus_one": (edit(lambda b: b.set_kv("x.words", Val.array(T.STRING, ["a", "b"], count=3))),
                              r"key 'x.words'\[2\]|metadata entry"),
    "arrays_nested_too_deep": (edit(lambda b: b.kv("y", nested(5))), "nested deeper"),
    "unknown_value_type": (edit(lambda b: b.kv("y", Val(13, raw=b"\0" * 8))), "unknown value type"),
    "unknown_value_type_huge": (edit(lambda b: b.kv("y", Val(2**31, raw=b"\0" * 8))), "unknown value type"),
    "unknown_array_elem_type": (edit(lambda b: b.kv("y", Val(T.ARRAY, raw=struct.pack("<IQ", 99, 0)))),
                                "element type"),
    "bool_value_2": (edit(lambda b: b.kv("y", Val(T.BOOL, 2))), "bool"),
    "duplicate_key": (edit(lambda b: b.kv("x.count", Val(T.UINT32, 8))), "duplicate metadata key 'x.count'"),
    "alignment_zero": (edit(lambda b: b.set_kv("general.alignment", Val(T.UINT32, 0))), "power of two"),
    "alignment_not_pow2": (edit(lambda b: b.set_kv("general.alignment", Val(T.UINT32, 48))), "power of two"),
    "alignment_u64": (edit(lambda b: b.set_kv("general.alignment", Val(T.UINT64, 32))), "UINT32"),
    "alignment_string": (edit(lambda b: b.set_kv("general.alignment", "32")), "UINT32"),
    "alignment_2_31": (edit(lambda b: b.set_kv("general.alignment", Val(T.UINT32, 2**31))),
                       "not a multiple of the alignment 2147483648"),
    "alignment_2_31_data_past_end": (edit(lambda b: (b.set_kv("general.alignment", Val(T.UINT32, 2**31)),
                                                     b.tensors.__delitem__(slice(1, None))))
                                     , "past the end"),
    "n_dims_0": (edit(set_tensor(0, n_dims=0)), "tensor 'a.weight': n_dims 0"),
    "n_dims_5": (edit(set_tensor(0, ne=[8, 2, 1, 1, 1])), "tensor 'a.weight': n_dims 5"),
    "n_dims_huge": (edit(set_tensor(1, n_dims=2**32 - 1)), "tensor 'b.weight': n_dims"),
    "dim_zero": (edit(set_tensor(0, ne=[8, 0])), "tensor 'a.weight': dimension 1 is 0"),
    "dim_negative": (edit(set_tensor(0, ne=[-8, 2])), "tensor 'a.weight': dimension 0"),
    "dims_product_overflow_u64": (edit(set_tensor(0, ne=[2**32, 2**32])), "overflows"),
    "dims_product_over_int64": (edit(set_tensor(0, ne=[2**62, 2])), "overflows"),
    "nbytes_overflow": (edit(set_tensor(0, ne=[2**62])), "tensor 'a.weight': byte size"),
    "nbytes_past_end": (edit(set_tensor(0, ne=[2**40, 4])), "past the end"),
    "ne0_not_block_multiple": (edit(set_tensor(1, ne=[48, 2])), "tensor 'b.weight': row length 48"),
    "unsupported_type_q2_k": (edit(set_tensor(1, ne=[256, 2], type_id=10)),
                              r"tensor 'b.weight' has unsupported type id 10 \(Q2_K\)"),
    "unknown_type_99": (edit(set_tensor(0, type_id=99)), "unsupported type id 99"),
    "unknown_type_max": (edit(set_tensor(0, type_id=2**32 - 1)), "unsupported type id"),
    "removed_type_q4_2": (edit(set_tensor(1, type_id=4)), r"Q4_2"),
    "offset_out_of_range": (edit(set_tensor(2, offset=2**40)), "tensor 'c.weight'.*past the end"),
    "offset_wraps_u64": (edit(set_tensor(2, offset=2**64 - 32)), "tensor 'c.weight'.*overflows"),
    "offset_misaligned": (edit(set_tensor(1, offset=65)), "tensor 'b.weight': data offset 65 is not a multiple"),
    "offset_overlap_same": (edit(set_tensor(1, offset=0)), "overlap"),
    "offset_overlap_partial": (edit(set_tensor(2, offset=96)), "overlap"),
    "duplicate_tensor_name": (edit(set_tensor(2, name="a.weight")), "duplicate tensor name 'a.weight'"),
    "empty_tensor_name": (edit(set_tensor(2, name="")), "empty name"),
    "tensor_name_length_huge": (edit(set_tensor(0, name_len=2**63)), "string length"),
}


def write_cases(cases, dirpath: Path) -> dict:
    paths = {}
    for name, (make, _) in cases.items():
        p = dirpath / f"{name}.gguf"
        p.write_bytes(make())
        paths[name] = p
    return paths


def run_probe(paths, *args, timeout=300) -> dict:
    """Opens every path in one subprocess; returns path -> verdict. Fails on signal or timeout."""
    proc = subprocess.run([sys.executable, str(PROBE), *args], input="\n".join(map(str, paths)),
                          capture_output=True, text=True, timeout=timeout, env=dict(os.environ))
    assert proc.returncode == 0, f"probe died (rc {proc.returncode}): {proc.stderr[-2000:]}"
    out = dict(line.split("\t", 1) for line in proc.stdout.splitlines() if "\t" in line)
    assert len(out) == len(paths), "probe stopped early"
    return out


def test_base_file_is_valid(tmp_path):
    p = tmp_path / "base.gguf"
    p.write_bytes(base().build())
    g = _core.GgufFile(str(p))
    assert [t["name"] for t in g.tensors] == ["a.weight", "b.weight", "c.weight"]
    assert g.metadata["x.nested"] == [[1, 2, 3]]


@pytest.mark.parametrize("name", list(CASES))
def test_corrupt_file_raises(tmp_path, name):
    make, pattern = CASES[name]
    p = tmp_path / f"{name}.gguf"
    p.write_bytes(make())
    with pytest.raises(_core.ModelFormatError, match=pattern) as exc:
        _core.GgufFile(str(p))
    assert str(p) in str(exc.value)  # messages name the file
    assert isinstance(exc.value, _core.LLMasOSError)


def test_corrupt_files_in_subprocess(tmp_path):
    paths = write_cases(CASES, tmp_path)
    verdicts = run_probe(list(paths.values()))
    bad = {n: verdicts[str(p)] for n, p in paths.items() if verdicts[str(p)] != "REJECTED"}
    assert not bad, bad


def mutations(raw: bytes, header_end: int, n: int, seed: int):
    """Random corruptions of the header: byte flips, boundary u32/u64 values, truncations."""
    rng = random.Random(seed)
    specials = [0, 1, 2**31, 2**32 - 1, 2**32, 2**63, 2**64 - 1, 2**64 - 32]
    for _ in range(n):
        b = bytearray(raw)
        kind = rng.randrange(3)
        pos = rng.randrange(header_end)
        if kind == 0:
            for _ in range(rng.randint(1, 4)):
                b[rng.randrange(header_end)] ^= 1 << rng.randrange(8)
        elif kind == 1:
            v = rng.choice(specials)
            if rng.random() < 0.5 and pos + 4 <= len(b):
                struct.pack_into("<I", b, pos, v & 0xFFFFFFFF)
            elif pos + 8 <= len(b):
                struct.pack_into("<Q", b, pos, v)
        else:
            del b[rng.randrange(len(b)):]
        yield bytes(b)


def test_random_header_mutations_never_crash(tmp_path):
    model = make_tiny_llama(tmp_path / "tiny.gguf", n_layer=1, wtype="q8_0", tie_embeddings=True)
    raw = model.path.read_bytes()
    header_end = _core.GgufFile(str(model.path)).data_offset
    paths = []
    for i, data in enumerate(mutations(raw, header_end, 300, seed=1234)):
        p = tmp_path / f"m{i}.gguf"
        p.write_bytes(data)
        paths.append(p)
    verdicts = run_probe(paths)
    errors = {p: v for p, v in verdicts.items() if v not in ("OK", "REJECTED")}
    assert not errors, errors


# ---- model-level corruptions: valid GGUF, inconsistent model ------------------------------------

def u32(x):
    return Val(T.UINT32, x)


MODEL_CASES = {
    "head_count_0": dict(metadata={"llama.attention.head_count": u32(0)}),
    "head_count_kv_0": dict(metadata={"llama.attention.head_count_kv": u32(0)}),
    "head_count_kv_not_dividing": dict(metadata={"llama.attention.head_count_kv": u32(3)}),
    "head_count_not_dividing_embd": dict(metadata={"llama.attention.head_count": u32(5)}),
    "block_count_0": dict(metadata={"llama.block_count": u32(0)}),
    "block_count_too_large": dict(metadata={"llama.block_count": u32(3)}),
    "embedding_length_mismatch": dict(metadata={"llama.embedding_length": u32(48)}),
    "feed_forward_length_mismatch": dict(metadata={"llama.feed_forward_length": u32(128)}),
    "feed_forward_length_0": dict(metadata={"llama.feed_forward_length": u32(0)}),
    "context_length_0": dict(metadata={"llama.context_length": u32(0)}),
    "embedding_length_string": dict(metadata={"llama.embedding_length": "64"}),
    "block_count_missing": dict(metadata={"llama.block_count": None}),
    "architecture_missing": dict(metadata={"general.architecture": None}),
    "architecture_int": dict(metadata={"general.architecture": u32(1)}),
    "architecture_unknown": dict(metadata={"general.architecture": "gpt-j"}),
    "rope_dim_odd": dict(metadata={"llama.rope.dimension_count": u32(15)}),
    "rope_dim_too_large": dict(metadata={"llama.rope.dimension_count": u32(1000)}),
    "rms_eps_negative": dict(metadata={"llama.attention.layer_norm_rms_epsilon": Val(T.FLOAT32, -1.0)}),
    "vocab_size_mismatch": dict(metadata={"llama.vocab_size": u32(1000)}),
    "missing_ffn_up": dict(drop_tensors=["blk.1.ffn_up.weight"]),
    "missing_token_embd": dict(drop_tensors=["token_embd.weight"]),
    "missing_output_norm": dict(drop_tensors=["output_norm.weight"]),
    "missing_attn_norm": dict(drop_tensors=["blk.0.attn_norm.weight"]),
    "attn_q_wrong_shape": dict(tensors={"blk.0.attn_q.weight": np.zeros((32, 64))}),
    "attn_k_wrong_shape": dict(tensors={"blk.1.attn_k.weight": np.zeros((64, 64))}),
    "ffn_down_transposed": dict(tensors={"blk.0.ffn_down.weight": np.zeros((96, 64))}),
    "ffn_gate_3d": dict(tensors={"blk.0.ffn_gate.weight": np.zeros((2, 96, 64))}),
    "token_embd_wrong_width": dict(tensors={"token_embd.weight": np.zeros((310, 32))}),
    "token_embd_fewer_rows_than_tokens": dict(tensors={"token_embd.weight": np.zeros((100, 64))},
                                              metadata={"llama.vocab_size": None}),
    "output_norm_wrong_length": dict(tensors={"output_norm.weight": np.ones(32)}),
    "output_wrong_shape": dict(tensors={"output.weight": np.zeros((310, 32))}),
    "tokens_int_array": dict(metadata={"tokenizer.ggml.tokens": Val.array(T.INT32, list(range(310)))}),
    "tokens_missing": dict(metadata={"tokenizer.ggml.tokens": None}),
    "tokens_not_array": dict(metadata={"tokenizer.ggml.tokens": "hello"}),
    "token_type_wrong_length": dict(metadata={"tokenizer.ggml.token_type": Val.array(T.INT32, [1] * 5)}),
    "token_type_strings": dict(metadata={"tokenizer.ggml.token_type": Val.array(T.STRING, ["1"] * 310)}),
    "scores_wrong_length": dict(metadata={"tokenizer.ggml.scores": Val.array(T.FLOAT32, [0.0] * 7)}),
    "merges_not_strings": dict(metadata={"tokenizer.ggml.merges": Val.array(T.INT32, [1, 2, 3])}),
    "tokenizer_model_unknown": dict(metadata={"tokenizer.ggml.model": "no-such-tokenizer"}),
    "bos_id_out_of_range": dict(metadata={"tokenizer.ggml.bos_token_id": u32(100000)}),
    "eos_id_out_of_range": dict(metadata={"tokenizer.ggml.eos_token_id": u32(310)}),
}

def open_model(path):
    return _core.Model(str(path), n_ctx=64, threads=1)


@pytest.mark.parametrize("wtype", ["f32", "q8_0"])
def test_valid_tiny_llama_loads(tmp_path, wtype):
    m = make_tiny_llama(tmp_path / "tiny.gguf", wtype=wtype)
    model = open_model(m.path)
    assert model.n_layer == 2 and model.n_embd == 64 and model.n_vocab == len(m.tokens)


@pytest.mark.parametrize("name", list(MODEL_CASES))
def test_corrupt_model_raises(tmp_path, name):
    m = make_tiny_llama(tmp_path / f"{name}.gguf", **MODEL_CASES[name])
    with pytest.raises(_core.ModelFormatError):
        open_model(m.path)


def test_corrupt_models_in_subprocess(tmp_path):
    paths = [make_tiny_llama(tmp_path / f"{n}.gguf", **kw).path for n, kw in MODEL_CASES.items()]
    verdicts = run_probe(paths, "--model")
    bad = {Path(p).stem: v for p, v in verdicts.items() if v != "REJECTED"}
    assert not bad, bad
