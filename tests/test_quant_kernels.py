"""Quantized formats and CPU kernels against numpy references (the gguf package), under every ISA
level this machine supports: dequantize, reference quantizers, activation quantizers, matmul."""
import numpy as np
import pytest
from gguf import GGMLQuantizationType as Q
from gguf.quants import dequantize as gguf_dequantize
from gguf.quants import np_roundf
from gguf.quants import quantize as gguf_quantize

import llmasos
from llmasos import _core

Q8_K = Q.Q8_K
LEGACY = [Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q8_0]
KQUANTS = [Q.Q4_K, Q.Q5_K, Q.Q6_K]
FLOATS = [Q.F32, Q.F16, Q.BF16]
WEIGHT_TYPES = FLOATS + LEGACY + KQUANTS
# Awkward matmul shapes: (rows, T, blocks per row); rows and T not multiples of the 4x4 tile.
SHAPES = [(1, 1, 1), (7, 3, 3), (13, 5, 7), (33, 9, 2), (5, 17, 4), (66, 1, 5)]


def info(t):
    return _core.type_info(int(t))


def block_size(t):
    return info(t)["block_size"]


# ---- numpy helpers ---------------------------------------------------------------------------------

def random_weights(t, rows, cols, rng):
    """Raw [rows, row_bytes] uint8 weights: quantized random floats where gguf can quantize the
    type, else random bytes with sane fp16 scales (K-quants)."""
    if t in FLOATS or t in LEGACY:
        q = gguf_quantize(rng.standard_normal((rows, cols)).astype(np.float32), t)
        return np.ascontiguousarray(q).view(np.uint8).reshape(rows, -1)
    nb = rows * cols // 256
    ts = info(t)["type_size"]
    raw = rng.integers(0, 256, size=(nb, ts), dtype=np.uint8)
    scale = lambda: rng.uniform(1e-3, 1e-2, size=nb).astype(np.float16).view(np.uint8).reshape(nb, 2)
    if t in (Q.Q4_K, Q.Q5_K):
        raw[:, 0:2], raw[:, 2:4] = scale(), scale()  # d, dmin
    else:  # Q6_K: d is the last field
        raw[:, ts - 2:ts] = scale()
    return raw.reshape(rows, -1)


def dequant(t, raw, n_rows):
    """Float rows of raw blocks: gguf's dequantize, or the layouts it lacks (Q8_1, Q8_K)."""
    raw = np.ascontiguousarray(raw, dtype=np.uint8).reshape(n_rows, -1)
    if t == Q.F32:
        return raw.view(np.float32)
    if t == Q.F16:
        return raw.view(np.float16).astype(np.float32)
    if t == Q.Q8_1:
        b = raw.reshape(-1, 36)
        d = b[:, 0:2].copy().view(np.float16).astype(np.float32)
        return (d * b[:, 4:].view(np.int8).astype(np.float32)).reshape(n_rows, -1)
    if t == Q8_K:
        b = raw.reshape(-1, 292)
        d = b[:, 0:4].copy().view(np.float32)
        return (d * b[:, 4:260].view(np.int8).astype(np.float32)).reshape(n_rows, -1)
    return gguf_dequantize(raw, t).reshape(n_rows, -1)


def ref_q8_1(x):
    """ggml's quantize_row_q8_1_ref in numpy: Q8_0 plus s = fp16(d * sum(q))."""
    b = x.astype(np.float32).reshape(-1, 32)
    d = np.abs(b).max(axis=1, keepdims=True) / np.float32(127)
    with np.errstate(divide="ignore"):
        inv = np.where(d == 0, np.float32(0), np.float32(1) / d).astype(np.float32)
    q = np_roundf(b * inv).astype(np.int8)
    s = (q.astype(np.int32).sum(axis=1, keepdims=True).astype(np.float32) * d).astype(np.float16)
    return np.concatenate([d.astype(np.float16).view(np.uint8), s.view(np.uint8),
                           q.view(np.uint8)], axis=1).reshape(-1)


def ref_q8_k(x):
    """ggml's quantize_row_q8_K_ref in numpy: scale -127/max, round half to even, 16-sums."""
    b = x.astype(np.float32).reshape(-1, 256)
    imax = np.abs(b).argmax(axis=1)
    mx = b[np.arange(len(b)), imax][:, None]
    iscale = (np.float32(-127) / mx).astype(np.float32)
    q = np.minimum(np.rint((iscale * b).astype(np.float32)), 127).astype(np.int8)
    bsums = q.astype(np.int16).reshape(-1, 16, 16).sum(axis=2).astype(np.int16)
    d = (np.float32(1) / iscale).astype(np.float32)
    return np.concatenate([d.view(np.uint8), q.view(np.uint8), bsums.view(np.uint8)],
                          axis=1).reshape(-1)


def act_roundtrip(t, x):
    """Activations as the integer kernels see them: quantized to vec_dot_type and back."""
    vdt = info(t)["vec_dot_type"]
    if vdt == int(Q.F32):
        return x.astype(np.float64)
    rows = [dequant(Q(vdt), _core.quantize(vdt, r), 1)[0]
            for r in x]
    return np.array(rows, dtype=np.float64)


def q8_1_correction(t, raw, rows, x):
    """Q4_1/Q5_1 kernels use Q8_1's fp16 s = d*sum(q) for the min term; the exact
    dequantized product uses d*sum(q) itself. Returns kernel minus exact, [T, rows]."""
    if t not in (Q.Q4_1, Q.Q5_1):
        return 0.0
    ts = info(t)["type_size"]
    m = raw.reshape(rows, -1, ts)[:, :, 2:4].copy().view(np.float16).astype(np.float64)[..., 0]
    corr = []
    for r in x:
        b = _core.quantize(int(Q.Q8_1), r).reshape(-1, 36)
        d = b[:, 0:2].copy().view(np.float16).astype(np.float64)[:, 0]
        s = b[:, 2:4].copy().view(np.float16).astype(np.float64)[:, 0]
        sumq = b[:, 4:].view(np.int8).astype(np.float64).sum(axis=1)
        corr.append(m @ (s - d * sumq))
    return np.array(corr)


# ---- traits -----------------------------------------------------------------------------------------

def test_type_info():
    expect = {Q.F32: (1, 4, Q.F32), Q.F16: (1, 2, Q.F32), Q.BF16: (1, 2, Q.F32),
              Q.Q4_0: (32, 18, Q.Q8_0), Q.Q4_1: (32, 20, Q.Q8_1), Q.Q5_0: (32, 22, Q.Q8_0),
              Q.Q5_1: (32, 24, Q.Q8_1), Q.Q8_0: (32, 34, Q.Q8_0), Q.Q8_1: (32, 36, Q.Q8_1),
              Q.Q4_K: (256, 144, Q8_K), Q.Q5_K: (256, 176, Q8_K), Q.Q6_K: (256, 210, Q8_K),
              Q8_K: (256, 292, Q8_K)}
    for t, (bs, ts, vdt) in expect.items():
        i = _core.type_info(int(t))
        assert (i["block_size"], i["type_size"], i["vec_dot_type"]) == (bs, ts, int(vdt)), t
        assert i["has_quantize"]
    for bad in (4, 5, 10, 11, 16, 39, 40, 1000):
        with pytest.raises(llmasos.LLMasOSError):
            _core.type_info(bad)


# ---- dequantize -------------------------------------------------------------------------------------

@pytest.mark.parametrize("t", WEIGHT_TYPES, ids=lambda t: t.name)
def test_dequantize_matches_gguf(each_isa, t):
    rng = np.random.default_rng(int(t) + 1)
    n = 3 * block_size(t) if t not in FLOATS else 77
    raw = random_weights(t, 1, n, rng).reshape(-1)
    got = _core.dequantize(int(t), raw.tobytes(), n)
    np.testing.assert_array_equal(got, dequant(t, raw, 1)[0])
    np.testing.assert_array_equal(_core.dequantize(int(t), raw, n), got)  # numpy input too


def test_fp16_bf16_conversions_exhaustive():
    halves = np.arange(1 << 16, dtype=np.uint16)
    got = _core.dequantize(int(Q.F16), halves.view(np.uint8), 1 << 16)
    want = halves.view(np.float16).astype(np.float32)
    assert np.array_equal(got, want, equal_nan=True)
    bf = _core.dequantize(int(Q.BF16), halves.view(np.uint8), 1 << 16)
    assert np.array_equal(bf, (halves.astype(np.uint32) << 16).view(np.float32), equal_nan=True)
    # float -> half / bfloat16 rounding (nearest even, overflow to inf) on awkward values
    rng = np.random.default_rng(5)
    x = np.concatenate([rng.standard_normal(4000) * 10.0 ** rng.integers(-9, 6, 4000),
                        [0.0, -0.0, 65504, 65519.9, 65520, 1e9, -1e9, 2.0 ** -25, 2.0 ** -24,
                         3 * 2.0 ** -26, 5.96e-8, np.inf, -np.inf]]).astype(np.float32)
    with np.errstate(over="ignore"):
        want16 = x.astype(np.float16)
    assert np.array_equal(_core.quantize(int(Q.F16), x).view(np.float16), want16)
    assert np.array_equal(_core.quantize(int(Q.BF16), x), gguf_quantize(x, Q.BF16))


def test_q8_k_dequantize(each_isa):
    rng = np.random.default_rng(7)
    x = rng.standard_normal(512).astype(np.float32)
    raw = _core.quantize(Q8_K, x)
    np.testing.assert_array_equal(_core.dequantize(Q8_K, raw, 512), dequant(Q8_K, raw, 1)[0])


def test_dequantize_rejects_bad_input():
    with pytest.raises(llmasos.LLMasOSError):
        _core.dequantize(int(Q.Q4_0), b"\0" * 18, 33)  # not a multiple of 32
    with pytest.raises(llmasos.LLMasOSError):
        _core.dequantize(int(Q.Q4_0), b"\0" * 17, 32)  # buffer too short
    with pytest.raises(llmasos.LLMasOSError):
        _core.dequantize(4, b"\0" * 64, 32)  # removed type id


# ---- quantizers -------------------------------------------------------------------------------------

@pytest.mark.parametrize("t", LEGACY + [Q.F16, Q.BF16], ids=lambda t: t.name)
def test_reference_quantize_bit_exact_with_gguf(t):
    rng = np.random.default_rng(11)
    x = (rng.standard_normal(32 * 40) * rng.uniform(0.01, 10)).astype(np.float32)
    x[32:64] = np.abs(x[32:64])  # a block with no negative values (Q4_1/Q5_1 min > 0)
    x[64:96] = 0.0               # an all-zero block (d = 0)
    want = np.ascontiguousarray(gguf_quantize(x, t)).view(np.uint8).reshape(-1)
    np.testing.assert_array_equal(_core.quantize(int(t), x), want)


def test_activation_quantizers_match_reference(each_isa):
    """The active level's Q8_0/Q8_1/Q8_K quantizers produce the reference bytes exactly."""
    rng = np.random.default_rng(13)
    x = (rng.standard_normal(256 * 5) * 3).astype(np.float32)
    x[256:288] = 0.0
    x[300] = 0.5 * (np.abs(x[288:320]).max() / 127) * 127  # a half-way value for roundf
    np.testing.assert_array_equal(_core.quantize(int(Q.Q8_0), x), gguf_quantize(x, Q.Q8_0))
    np.testing.assert_array_equal(_core.quantize(int(Q.Q8_1), x), ref_q8_1(x))
    y = x.copy()
    y[256:512] = 0.0  # all-zero Q8_K super-block
    want_k = ref_q8_k(np.where(np.arange(y.size) // 256 == 1, 1.0, y).astype(np.float32))
    want_k = want_k.reshape(-1, 292)
    want_k[1] = 0
    np.testing.assert_array_equal(_core.quantize(Q8_K, y), want_k.reshape(-1))
    for t in (int(Q.Q8_0), int(Q.Q8_1), Q8_K):
        np.testing.assert_array_equal(_core.quantize_act(t, y), _core.quantize(t, y))
        np.testing.assert_array_equal(_core.quantize_act(t, x), _core.quantize(t, x))


@pytest.mark.parametrize("t,max_rel_err", [(Q.Q4_K, 0.12), (Q.Q5_K, 0.06), (Q.Q6_K, 0.03)],
                         ids=lambda v: getattr(v, "name", str(v)))
def test_kquant_quantizers_roundtrip(t, max_rel_err):
    rng = np.random.default_rng(17)
    x = (rng.standard_normal(256 * 8) * 0.05).astype(np.float32)
    x[256:512] = np.abs(x[256:512]) + 0.01  # positive block
    x[512:768] = 0.0                        # zero block
    raw = _core.quantize(int(t), x)
    assert raw.size == 8 * info(t)["type_size"]
    back = dequant(t, raw, 1)[0]
    np.testing.assert_array_equal(back[512:768], 0.0)
    for blk in range(8):
        s = slice(256 * blk, 256 * blk + 256)
        err = np.linalg.norm(back[s] - x[s])
        assert err <= max_rel_err * np.linalg.norm(x[s]) + 1e-12, (blk, err)


# ---- matmul -----------------------------------------------------------------------------------------

def run_matmul(t, raw, rows, cols, x, threads=1):
    return _core.matmul(int(t), raw, rows, cols, x, threads=threads)


@pytest.mark.parametrize("t", WEIGHT_TYPES, ids=lambda t: t.name)
@pytest.mark.parametrize("rows,T,blocks", SHAPES)
def test_matmul_against_numpy(each_isa, t, rows, T, blocks):
    bs = block_size(t)
    cols = blocks * (bs if bs > 1 else 32) + (0 if bs > 1 else 3)  # float types: odd lengths
    rng = np.random.default_rng(rows * 1000 + T * 10 + blocks)
    raw = random_weights(t, rows, cols, rng)
    W = dequant(t, raw, rows).astype(np.float64)
    x = (rng.standard_normal((T, cols)) + 0.1).astype(np.float32)
    y = run_matmul(t, raw, rows, cols, x)
    assert y.shape == (T, rows) and y.dtype == np.float32
    mag = np.abs(x).astype(np.float64) @ np.abs(W).T  # scale of the sums, for tolerances
    # Tight: the same quantized activations, so only float rounding of the block scales differs.
    xq = act_roundtrip(t, x)
    tight = xq @ W.T + q8_1_correction(t, raw, rows, x)
    np.testing.assert_array_less(np.abs(y - tight), 2e-5 * mag + 1e-30)
    # Loose: against float activations; 8-bit activations cost ~1% of the magnitude at worst.
    loose = 1e-5 if t in FLOATS else 0.03
    np.testing.assert_array_less(np.abs(y - x.astype(np.float64) @ W.T), loose * mag + 1e-30)


@pytest.mark.parametrize("t", WEIGHT_TYPES, ids=lambda t: t.name)
def test_matmul_threads_identical_and_isas_agree(t):
    rows, T = 103, 6
    cols = 2 * 256
    rng = np.random.default_rng(int(t) + 100)
    raw = random_weights(t, rows, cols, rng)
    x = rng.standard_normal((T, cols)).astype(np.float32)
    mag = np.abs(x).astype(np.float64) @ np.abs(dequant(t, raw, rows).astype(np.float64)).T
    before = _core.active_isa()
    results = {}
    try:
        for isa in _core.supported_isas():
            _core.select_isa(isa)
            y1 = run_matmul(t, raw, rows, cols, x, threads=1)
            for threads in (2, 3):
                np.testing.assert_array_equal(run_matmul(t, raw, rows, cols, x, threads), y1)
            results[isa] = y1
    finally:
        _core.select_isa(before)
    base = results["generic"]
    for isa, y in results.items():  # one canonical float order: bit-identical (test_isa_determinism)
        np.testing.assert_array_less(np.abs(y - base), 2e-6 * mag + 1e-30, err_msg=isa)
        assert y.tobytes() == base.tobytes(), isa


def test_matmul_large_t_splits_quantization():
    """T large enough that activation quantization is split across threads."""
    rng = np.random.default_rng(3)
    rows, cols, T = 20, 1024, 160
    raw = random_weights(Q.Q4_1, rows, cols, rng)
    x = rng.standard_normal((T, cols)).astype(np.float32)
    y1 = run_matmul(Q.Q4_1, raw, rows, cols, x, threads=1)
    np.testing.assert_array_equal(run_matmul(Q.Q4_1, raw, rows, cols, x, threads=2), y1)
    W = dequant(Q.Q4_1, raw, rows).astype(np.float64)
    mag = np.abs(x).astype(np.float64) @ np.abs(W).T
    tight = act_roundtrip(Q.Q4_1, x) @ W.T + q8_1_correction(Q.Q4_1, raw, rows, x)
    np.testing.assert_array_less(np.abs(y1 - tight), 2e-5 * mag)


def test_matmul_rejects_bad_shapes():
    rng = np.random.default_rng(0)
    raw = random_weights(Q.Q8_0, 4, 64, rng)
    x = np.ones((2, 64), np.float32)
    with pytest.raises(llmasos.LLMasOSError):
        _core.matmul(int(Q.Q8_0), raw, 4, 48, np.ones((2, 48), np.float32))  # 48 % 32 != 0
    with pytest.raises(llmasos.LLMasOSError):
        _core.matmul(int(Q.Q8_0), raw, 5, 64, x)  # weights too short for 5 rows
    with pytest.raises(llmasos.LLMasOSError):
        _core.matmul(int(Q.Q8_0), raw, 4, 64, np.ones((2, 32), np.float32))  # x width
    with pytest.raises(llmasos.LLMasOSError):
        _core.matmul(4, raw, 4, 64, x)  # unknown type
    assert run_matmul(Q.Q8_0, raw, 4, 64, np.zeros((0, 64), np.float32)).shape == (0, 4)
