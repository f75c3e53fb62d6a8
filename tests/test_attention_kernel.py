"""The attention kernel (causal, grouped-query, against a KV cache) against torch's
scaled_dot_product_attention, under every ISA level, on awkward shapes; and bit-identical across
levels (the canonical float order)."""
import numpy as np
import pytest
import torch

from llmasos import _core
from test_isa_determinism import assert_bitwise_equal, under_each_isa

# (new tokens T, cached positions pos0, n_head, n_head_kv, head_dim): decode steps, prompt chunks
# after a cached prefix, MHA and GQA, head dims that are not multiples of the vector width.
SHAPES = [(1, 0, 9, 3, 64), (1, 130, 9, 3, 64), (7, 5, 9, 3, 64), (33, 17, 4, 2, 24),
          (1, 100, 8, 8, 64), (70, 0, 6, 1, 20), (5, 300, 2, 2, 7), (129, 3, 4, 4, 128)]


def make(T, pos0, H, Hkv, D, seed=0):
    rng = np.random.default_rng(seed)
    S = pos0 + T
    q = rng.standard_normal((T, H, D), dtype=np.float32)
    k = rng.standard_normal((S, Hkv, D), dtype=np.float32)
    v = rng.standard_normal((S, Hkv, D), dtype=np.float32)
    return q, k, v


def reference(q, k, v, pos0):
    T, H, _ = q.shape
    S, Hkv, _ = k.shape
    qt = torch.from_numpy(q).double().transpose(0, 1)
    kt = torch.from_numpy(k).double().transpose(0, 1).repeat_interleave(H // Hkv, 0)
    vt = torch.from_numpy(v).double().transpose(0, 1).repeat_interleave(H // Hkv, 0)
    mask = torch.arange(S)[None, :] <= (pos0 + torch.arange(T))[:, None]
    out = torch.nn.functional.scaled_dot_product_attention(qt, kt, vt, attn_mask=mask)
    return out.transpose(0, 1).numpy()


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "T%d-pos%d-h%d-kv%d-d%d" % s)
def test_attention_matches_torch_sdpa(each_isa, shape):
    T, pos0 = shape[0], shape[1]
    q, k, v = make(*shape)
    got = _core.attention(q, k, v, pos0, 2)
    np.testing.assert_allclose(got, reference(q, k, v, pos0), rtol=0, atol=2e-5)


@pytest.mark.parametrize("shape", SHAPES[:4], ids=lambda s: "T%d-pos%d-h%d-kv%d-d%d" % s)
def test_attention_bit_identical_across_isas_and_threads(shape):
    q, k, v = make(*shape, seed=1)
    results = under_each_isa(lambda: _core.attention(q, k, v, shape[1], 2))
    assert_bitwise_equal(results)
    one = _core.attention(q, k, v, shape[1], 1)
    assert one.tobytes() == results[next(iter(results))].tobytes()


def round_kv(x, kv_type):
    if kv_type == "f16":
        return x.astype(np.float16).astype(np.float32)
    if kv_type == "bf16":
        return torch.from_numpy(x).to(torch.bfloat16).float().numpy()
    return x


@pytest.mark.parametrize("kv_type", ["f16", "bf16"])
@pytest.mark.parametrize("shape", SHAPES[1:5], ids=lambda s: "T%d-pos%d-h%d-kv%d-d%d" % s)
def test_attention_half_precision_cache(each_isa, kv_type, shape):
    """An F16 / BF16 cache stores keys and values rounded to nearest even and widens them exactly:
    the result is the float attention over the rounded keys and values."""
    q, k, v = make(*shape, seed=2)
    got = _core.attention(q, k, v, shape[1], 2, kv_type)
    ref = reference(q, round_kv(k, kv_type), round_kv(v, kv_type), shape[1])
    np.testing.assert_allclose(got, ref, rtol=0, atol=2e-5)


@pytest.mark.parametrize("kv_type", ["f16", "bf16"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "T%d-pos%d-h%d-kv%d-d%d" % s)
def test_half_cache_read_as_stored_equals_float_cache_bitwise(kv_type, shape):
    """F16 / BF16 cache blocks go to the kernels as stored (widened in registers): the bits equal
    an F32 cache holding the same rounded keys and values, under every level and thread count."""
    q, k, v = make(*shape, seed=3)
    kr, vr = round_kv(k, kv_type), round_kv(v, kv_type)
    results = under_each_isa(lambda: _core.attention(q, k, v, shape[1], 2, kv_type))
    assert_bitwise_equal(results)
    base = results[next(iter(results))]
    assert base.tobytes() == _core.attention(q, kr, vr, shape[1], 2, "f32").tobytes()
    assert _core.attention(q, k, v, shape[1], 3, kv_type).tobytes() == base.tobytes()


def quantize_kv(x):
    """A Q8_0 cache's keys / values as it reads them back: each position's vector of each KV head
    in groups of 32 (or whole when head_dim is not a multiple of 32), each on its own scale,
    d = max|x| / 127, q = x / d rounded to nearest even (float32 steps)."""
    D = x.shape[-1]
    G = 32 if D % 32 == 0 else D
    g = x.reshape(*x.shape[:-1], D // G, G)
    amax = np.abs(g).max(axis=-1, keepdims=True)
    d = (amax / np.float32(127)).astype(np.float32)
    inv = np.where(d != 0, np.float32(1) / np.where(d != 0, d, 1), np.float32(0)).astype(np.float32)
    q = np.rint(np.clip(g * inv, -127, 127)).astype(np.float32)
    return q.reshape(x.shape), np.broadcast_to(d, g.shape).reshape(x.shape)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "T%d-pos%d-h%d-kv%d-d%d" % s)
def test_q8_cache_matches_attention_over_its_quants(each_isa, shape):
    """A Q8_0 cache holds int8 quants and a scale per 32 dimensions of each position and KV head:
    the result is the attention over the dequantized keys and values (only the scales' rounding
    order differs)."""
    q, k, v = make(*shape, seed=4)
    (kq, kd), (vq, vd) = quantize_kv(k), quantize_kv(v)
    assert np.abs(kq).max() == 127 and np.abs(kq).min() == 0
    got = _core.attention(q, k, v, shape[1], 2, "q8_0")
    np.testing.assert_allclose(got, reference(q, kq * kd, vq * vd, shape[1]), rtol=0, atol=3e-5)
    # and within 8-bit quantization error of the unquantized attention
    np.testing.assert_allclose(got, reference(q, k, v, shape[1]), rtol=0, atol=0.05)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "T%d-pos%d-h%d-kv%d-d%d" % s)
def test_q8_cache_bit_identical_across_isas_and_threads(shape):
    q, k, v = make(*shape, seed=5)
    k[0, 0] = 0.0  # an all-zero vector: scales 0, quants 0
    v[-1, 0, :7] = 0.0
    results = under_each_isa(lambda: _core.attention(q, k, v, shape[1], 2, "q8_0"))
    assert_bitwise_equal(results)
    base = results[next(iter(results))]
    assert np.isfinite(base).all()
    assert _core.attention(q, k, v, shape[1], 1, "q8_0").tobytes() == base.tobytes()
    assert _core.attention(q, k, v, shape[1], 3, "q8_0").tobytes() == base.tobytes()


def test_attention_rejects_bad_shapes():
    q, k, v = make(3, 2, 4, 2, 8)
    with pytest.raises(_core.InvalidArgumentError, match="pos0"):
        _core.attention(q, k, v, 1)
    with pytest.raises(_core.InvalidArgumentError, match="multiple"):
        _core.attention(q, k[:, :1].repeat(3, 1), v[:, :1].repeat(3, 1), 2)
    with pytest.raises(_core.InvalidArgumentError, match="3-d"):
        _core.attention(q[0], k, v, 2)
    with pytest.raises(_core.InvalidArgumentError, match="kv_type"):
        _core.attention(q, k, v, 2, 1, "q4_0")


def reference_window(q, k, v, pos0, window, scale, softcap=0.0):
    """Causal attention where position p sees positions p - window + 1 .. p (float64), scores
    soft-capped (softcap * tanh(score / softcap)) when softcap > 0."""
    T, H, _ = q.shape
    S, Hkv, _ = k.shape
    qt = torch.from_numpy(q).double().transpose(0, 1)
    kt = torch.from_numpy(k).double().transpose(0, 1).repeat_interleave(H // Hkv, 0)
    vt = torch.from_numpy(v).double().transpose(0, 1).repeat_interleave(H // Hkv, 0)
    p = (pos0 + torch.arange(T))[:, None]
    j = torch.arange(S)[None, :]
    mask = (j <= p) & (j > p - window)
    scores = qt @ kt.transpose(1, 2) * scale
    if softcap:
        scores = softcap * torch.tanh(scores / softcap)
    out = torch.softmax(scores.masked_fill(~mask, float("-inf")), -1) @ vt
    return out.transpose(0, 1).numpy()


# (T, pos0, n_head, n_head_kv, head_dim, window): windows inside one 16-position block and across
# several, a prompt chunk whose first rows see the whole past and last rows do not, decode far
# past the window, Gemma 3's shape (4 heads of 256 over 1 KV head).
WINDOW_SHAPES = [(1, 40, 4, 2, 32, 8), (37, 0, 4, 2, 32, 8), (20, 30, 6, 3, 24, 17),
                 (1, 600, 4, 1, 256, 512), (70, 500, 4, 1, 64, 512), (9, 3, 2, 2, 16, 100)]


@pytest.mark.parametrize("shape", WINDOW_SHAPES, ids=lambda s: "T%d-pos%d-h%d-kv%d-d%d-w%d" % s)
def test_sliding_window_matches_torch_sdpa(each_isa, shape):
    T, pos0, H, Hkv, D, window = shape
    q, k, v = make(T, pos0, H, Hkv, D, seed=3)
    scale = 0.7 / np.sqrt(D)  # a scale of the model's own (Gemma 3 27B's is not 1 / sqrt(d))
    got = _core.attention(q, k, v, pos0, 2, window=window, scale=scale)
    np.testing.assert_allclose(got, reference_window(q, k, v, pos0, window, scale), rtol=0, atol=2e-5)


@pytest.mark.parametrize("shape", WINDOW_SHAPES[:3], ids=lambda s: "T%d-pos%d-h%d-kv%d-d%d-w%d" % s)
def test_sliding_window_row_independent_of_its_batch(shape):
    """Each row's bits are those it gets alone (its tile may start a block earlier than its window),
    at every level and thread count."""
    T, pos0, H, Hkv, D, window = shape
    q, k, v = make(T, pos0, H, Hkv, D, seed=4)
    results = under_each_isa(lambda: _core.attention(q, k, v, pos0, 2, window=window))
    assert_bitwise_equal(results)
    full = results[next(iter(results))]
    for t in sorted({0, T // 2, T - 1}):
        alone = _core.attention(q[t:t + 1], k[:pos0 + t + 1], v[:pos0 + t + 1], pos0 + t, 1, window=window)
        assert alone.tobytes() == full[t:t + 1].tobytes(), t
    # Soft-capped scores (Gemma 2), with and without a window; a row alone gets the same bits.
    for w in (window, 10 ** 6):
        capped = under_each_isa(lambda: _core.attention(q, k, v, pos0, 2, window=w, softcap=0.9))
        assert_bitwise_equal(capped)
        got = capped[next(iter(capped))]
        np.testing.assert_allclose(got, reference_window(q, k, v, pos0, w, 1 / np.sqrt(D), 0.9),
                                   rtol=0, atol=2e-5)
        alone = _core.attention(q[-1:], k, v, pos0 + T - 1, 1, window=w, softcap=0.9)
        assert alone.tobytes() == got[-1:].tobytes()
    # A window wider than the context is no window at all.
    assert _core.attention(q, k, v, pos0, 2, window=10 ** 6).tobytes() == _core.attention(q, k, v, pos0, 2).tobytes()


def test_sliding_window_ignores_overflowed_values_outside_it():
    """A value that overflows the F16 cache (inf) at position 0 reaches only rows whose first
    visible key shares its 16-position block (their p = 0 for it, and 0 * inf is NaN, as in
    llama.cpp's masked product): a row whose window starts past that block stays finite, and every
    row, NaN or not, has the bits it gets alone, though its tile may start in position 0's block."""
    T, H, Hkv, D, window = 40, 4, 2, 32, 8
    q, k, v = make(T, 0, H, Hkv, D, seed=6)
    v[0] = 1e6  # inf once stored as F16
    got = _core.attention(q, k, v, 0, 2, "f16", window=window)
    assert not np.isfinite(got[:window]).all()
    first_past = 16 + window - 1  # position whose window starts at 16
    assert np.isfinite(got[first_past:]).all()
    for t in (window, 20, first_past, T - 1):
        alone = _core.attention(q[t:t + 1], k[:t + 1], v[:t + 1], t, 1, "f16", window=window)
        assert alone.tobytes() == got[t:t + 1].tobytes(), t
