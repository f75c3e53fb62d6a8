"""The GGUF reader against the `gguf` package: metadata, tensor infos and raw tensor bytes of the
real SmolLM2 file and of factory-built files (v2 and v3, nested arrays, every value type)."""
import numpy as np
import pytest

gguf = pytest.importorskip("gguf")

from llmasos import _core  # noqa: E402
from gguf_factory import (F16, F32, Q4_0, Q8_0, GgufBuilder, T, Val,  # noqa: E402
                          make_tiny_llama)


def reader_metadata(r) -> dict:
    """key -> python value as the gguf package reads it (its GGUF.* pseudo-keys left out)."""
    return {k: f.contents() for k, f in r.fields.items() if not k.startswith("GGUF.")}


def assert_same_as_reader(path):
    g = _core.GgufFile(str(path))
    r = gguf.GGUFReader(str(path))
    assert g.version == r.fields["GGUF.version"].contents()
    assert g.alignment == r.alignment
    assert g.data_offset == r.data_offset
    ours, theirs = g.metadata, reader_metadata(r)
    assert list(ours) == list(theirs)          # same keys, same order
    for k, v in theirs.items():
        assert ours[k] == v, k
    assert [t["name"] for t in g.tensors] == [t.name for t in r.tensors]
    for ti, rt in zip(g.tensors, r.tensors):
        name = ti["name"]
        assert ti["shape"] == [int(d) for d in rt.shape], name
        assert ti["type"] == int(rt.tensor_type), name
        assert ti["type_name"] == rt.tensor_type.name, name
        assert g.data_offset + ti["offset"] == rt.data_offset, name
        assert ti["nbytes"] == rt.n_bytes, name
        ours_b = g.tensor_bytes(name)
        assert ours_b.dtype == np.uint8 and ours_b.shape == (rt.n_bytes,)
        assert np.array_equal(ours_b, np.asarray(rt.data).reshape(-1).view(np.uint8)), name
    return g


def test_real_model_matches_gguf_package(smollm2_gguf):
    g = assert_same_as_reader(smollm2_gguf)
    assert g.version == 3
    assert len(g.tensors) == 272
    md = g.metadata
    assert md["general.architecture"] == "llama"
    assert md["llama.block_count"] == 30
    assert md["llama.embedding_length"] == 576
    assert len(md["tokenizer.ggml.tokens"]) == 49152
    assert md["tokenizer.ggml.tokens"][:3] == ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    assert md["tokenizer.ggml.add_bos_token"] is False
    assert "tokenizer.chat_template" in g and "no.such.key" not in g
    assert g.has_tensor("blk.29.ffn_down.weight") and not g.has_tensor("blk.30.ffn_down.weight")


def test_every_value_type_and_nested_arrays(tmp_path):
    b = GgufBuilder(version=3, alignment=64)
    b.kv("general.alignment", Val(T.UINT32, 64))
    scalars = {T.UINT8: 200, T.INT8: -100, T.UINT16: 60000, T.INT16: -30000, T.UINT32: 4_000_000_000,
               T.INT32: -2_000_000_000, T.UINT64: 2**64 - 1, T.INT64: -2**63, T.FLOAT32: 0.5,
               T.FLOAT64: 1e-300, T.BOOL: True}
    for t, v in scalars.items():
        b.kv(f"s.{t.name.lower()}", Val(t, v))
    b.kv("s.string", "héllo ✓")
    b.kv("s.empty_string", "")
    b.kv("a.i16", Val.array(T.INT16, [1, -2, 3]))
    b.kv("a.f64", Val.array(T.FLOAT64, [0.25, -1.5]))
    b.kv("a.bool", Val.array(T.BOOL, [1, 0, 1]))
    b.kv("a.str", Val.array(T.STRING, ["x", "", "yz"]))
    b.kv("a.empty", Val.array(T.UINT32, []))
    b.kv("a.nested", Val.array(T.ARRAY, [Val.array(T.UINT8, [1, 2]), Val.array(T.UINT8, [])]))
    b.kv("a.deep", Val.array(T.ARRAY, [Val.array(T.ARRAY, [Val.array(T.ARRAY, [Val.array(T.INT32, [7])])])]))
    rng = np.random.default_rng(1)
    b.tensor("f32", [8, 3], F32, rng.standard_normal(24).astype(np.float32).tobytes())
    b.tensor("f16", [5], F16, rng.standard_normal(5).astype(np.float16).tobytes())
    b.tensor("q8", [64, 2], Q8_0, rng.integers(0, 256, 136, dtype=np.uint8).tobytes())
    b.tensor("q4_0.3d", [32, 2, 3], Q4_0, rng.integers(0, 256, 108, dtype=np.uint8).tobytes())
    path = b.write(tmp_path / "types.gguf")
    g = _core.GgufFile(str(path))
    md = g.metadata
    assert md["s.uint64"] == 2**64 - 1 and md["s.int64"] == -2**63
    assert md["s.float32"] == 0.5 and md["s.float64"] == 1e-300 and md["s.bool"] is True
    assert md["s.string"] == "héllo ✓" and md["s.empty_string"] == ""
    assert md["a.bool"] == [True, False, True]
    assert md["a.nested"] == [[1, 2], []]
    assert md["a.deep"] == [[[[7]]]]
    assert g.alignment == 64 and g.data_offset % 64 == 0
    assert [t["offset"] % 64 for t in g.tensors] == [0] * 4
    assert g.tensors[3]["shape"] == [32, 2, 3]
    # The gguf package cannot read arrays of arrays' contents() uniformly; compare the tensors.
    r = gguf.GGUFReader(str(path))
    for ti, rt in zip(g.tensors, r.tensors):
        assert np.array_equal(g.tensor_bytes(ti["name"]), np.asarray(rt.data).reshape(-1).view(np.uint8))


@pytest.mark.parametrize("version", [2, 3])
@pytest.mark.parametrize("wtype", ["f32", "q8_0"])
def test_tiny_llama_matches_gguf_package(tmp_path, version, wtype):
    m = make_tiny_llama(tmp_path / "tiny.gguf", version=version, wtype=wtype)
    g = assert_same_as_reader(m.path)
    assert g.version == version
    md = g.metadata
    assert md["llama.attention.head_count"] == 4 and md["llama.attention.head_count_kv"] == 2
    assert md["tokenizer.ggml.tokens"] == m.tokens and md["tokenizer.ggml.merges"] == m.merges
    assert len(md["tokenizer.ggml.token_type"]) == len(m.tokens)
    emb = next(t for t in g.tensors if t["name"] == "token_embd.weight")
    assert emb["shape"] == [64, len(m.tokens)]
    assert emb["type_name"] == ("Q8_0" if wtype == "q8_0" else "F32")
    if wtype == "f32":
        raw = g.tensor_bytes("blk.1.ffn_down.weight").view(np.float32).reshape(64, 96)
        assert np.array_equal(raw, m.weights["blk.1.ffn_down.weight"])


def test_tensor_views_are_read_only_and_outlive_close(tmp_path):
    m = make_tiny_llama(tmp_path / "tiny.gguf")
    g = _core.GgufFile(str(m.path))
    view = g.tensor_bytes("output_norm.weight")
    assert not view.flags.writeable
    with pytest.raises(ValueError):
        view[0] = 1
    g.close()
    assert g.closed
    assert np.array_equal(view.view(np.float32), m.weights["output_norm.weight"])  # mapping kept
    with pytest.raises(ValueError):
        g.metadata
    with _core.GgufFile(str(m.path)) as h:
        with pytest.raises(KeyError):
            h.tensor_bytes("no.such.tensor")
    assert h.closed


def test_missing_file_raises_llmasos_error(tmp_path):
    with pytest.raises(_core.LLMasOSError):
        _core.GgufFile(str(tmp_path / "absent.gguf"))
    with pytest.raises(_core.ModelFormatError):
        _core.GgufFile(str(tmp_path))  # a directory
