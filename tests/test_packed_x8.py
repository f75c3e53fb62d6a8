"""Row-interleaved (x8) packed weights: the repacking reads back exactly, and matmul over a packed
matrix follows the x8 canonical order of quant_dot.h bit for bit (replayed here in numpy float32)
under every ISA level, whatever the token count, tiling or thread count."""
import numpy as np
import pytest
from gguf import GGMLQuantizationType as Q

import llmasos
from llmasos import _core
from test_quant_kernels import act_roundtrip, dequant, q8_1_correction, random_weights

LEGACY = [Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q8_0]
# (rows, T, blocks): rows not multiples of the 8-row group, T not of the 4-token tile; T >= 16 fills
# the amx level's 16-row tiles (37: two full tiles and a partial one), odd blocks leave a lone block;
# 8 is the fewest tokens the amx level takes to its tiles (7 and fewer run its base level).
SHAPES = [(1, 1, 1), (7, 3, 3), (13, 5, 7), (33, 9, 2), (8, 4, 1), (66, 1, 5), (17, 2, 18),
          (40, 37, 3), (17, 16, 4), (9, 20, 1), (11, 8, 2)]
LEVELS = _core.supported_isas() + _core.emulated_isas()


def fma32(a, b, c):
    """float32 fused multiply-add, a * b + c rounded once (quant_dot.h's fma in the x8 order),
    elementwise with broadcasting: a * b is exact in float64; the float64 sum s and its exact error
    e (two-sum), s rounded to odd (the odd neighbour when inexact), then to float32 - one rounding
    overall (Boldo and Melquiond), as the kernels' fma_exact does without the instruction."""
    a, b, c = (np.asarray(v, np.float32).astype(np.float64) for v in (a, b, c))
    p = a * b
    s = p + c
    bb = s - p
    e = (p - (s - bb)) + (c - bb)
    u = np.ascontiguousarray(s).view(np.uint64)
    bump = (e != 0) & ((u & 1) == 0)
    u = np.where(bump, np.where((e > 0) == (s > 0), u + np.uint64(1), u - np.uint64(1)), u)
    return u.view(np.float64).astype(np.float32)


def legacy_ints(t, raw, rows):
    """Per row and block: d (float32), m (float32, or None), and the signed quants [rows, nb, 32]
    (q - 8 / q - 16 for Q4_0 / Q5_0) of ggml-layout blocks."""
    ts = _core.type_info(int(t))["type_size"]
    b = np.ascontiguousarray(raw).reshape(rows, -1, ts)
    f16 = lambda o: b[:, :, o:o + 2].copy().view(np.float16)[..., 0].astype(np.float32)
    d = f16(0)
    m = f16(2) if t in (Q.Q4_1, Q.Q5_1) else None
    if t == Q.Q8_0:
        return d, m, b[:, :, 2:34].view(np.int8).astype(np.int64)
    o = 4 if m is not None else 2
    hi = 0
    if t in (Q.Q5_0, Q.Q5_1):
        qh = b[:, :, o:o + 4].copy().view(np.uint32)[..., 0].astype(np.int64)
        hi = ((qh[..., None] >> np.arange(32)) & 1) << 4
        o += 4
    qs = b[:, :, o:o + 16].astype(np.int64)
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=2) | hi
    off = {Q.Q4_0: 8, Q.Q5_0: 16}.get(t, 0)
    return d, m, q - off


def act_ints(t, x):
    """The kernel's activation blocks of x [T, cols]: d, s (float32) and quants [T, nb, 32]."""
    vdt = _core.type_info(int(t))["vec_dot_type"]
    bs = 36 if vdt == int(Q.Q8_1) else 34
    b = np.stack([_core.quantize_act(vdt, r).reshape(-1, bs) for r in x])
    f16 = lambda o: b[:, :, o:o + 2].copy().view(np.float16)[..., 0].astype(np.float32)
    qs = b[:, :, bs - 32:].view(np.int8).astype(np.int64)
    return f16(0), (f16(2) if bs == 36 else None), qs


def k4_ints(t, raw, rows):
    """Q4_K / Q5_K blocks: d, dmin (float32 [rows, nb]), sc, m ([rows, nb, 8]), q [rows, nb, 256]."""
    bs = 144 if t == Q.Q4_K else 176
    b = np.ascontiguousarray(raw).reshape(rows, -1, bs)
    f16 = lambda o: b[:, :, o:o + 2].copy().view(np.float16)[..., 0].astype(np.float32)
    s = b[:, :, 4:16].astype(np.int64)
    sc = np.concatenate([s[..., 0:4] & 63, (s[..., 8:12] & 0xF) | ((s[..., 0:4] >> 6) << 4)], axis=2)
    m = np.concatenate([s[..., 4:8] & 63, (s[..., 8:12] >> 4) | ((s[..., 4:8] >> 6) << 4)], axis=2)
    qs = b[:, :, bs - 128:bs].astype(np.int64).reshape(rows, -1, 4, 32)
    q = np.stack([qs & 0x0F, qs >> 4], axis=3).reshape(rows, -1, 8, 32)  # sub-blocks 2k, 2k + 1
    if t == Q.Q5_K:  # bit j of qh[l]: the 5th bit of element l of sub-block j
        qh = b[:, :, 16:48].astype(np.int64)
        q = q | (((qh[:, :, None, :] >> np.arange(8)[None, None, :, None]) & 1) << 4)
    return f16(0), f16(2), sc, m, q.reshape(rows, -1, 256)


def k4_canonical(t, raw, rows, x):
    """quant_dot.h's Q4_K / Q5_K x8 order: exact sumi = sum_j sc_j S_j, summ = sum_j m_j bsum_j,
    then acc = acc + ((dw * dx) * sumi - (dminw * dx) * summ) per super-block, in float32."""
    dw, dmw, sc, m, qw = k4_ints(t, raw, rows)
    blocks = np.stack([_core.quantize_act(int(Q.Q8_K), r).reshape(-1, 292) for r in x])
    dx = blocks[:, :, 0:4].copy().view(np.float32)[..., 0]
    qx = blocks[:, :, 4:260].view(np.int8).astype(np.int64)
    S = np.einsum("rbje,tbje->trbj", qw.reshape(rows, -1, 8, 32), qx.reshape(x.shape[0], -1, 8, 32))
    sumi = np.einsum("trbj,rbj->trb", S, sc)
    summ = np.einsum("rbj,tbj->trb", m, qx.reshape(x.shape[0], -1, 8, 32).sum(axis=3))
    acc = np.zeros((x.shape[0], rows), np.float32)
    for b in range(qw.shape[1]):
        ta = (dw[None, :, b] * dx[:, b, None]) * sumi[:, :, b].astype(np.float32)
        tm = (dmw[None, :, b] * dx[:, b, None]) * summ[:, :, b].astype(np.float32)
        acc = acc + (ta - tm)
    return acc


def q6_k_canonical(raw, rows, x):
    """quant_dot.h's Q6_K x8 order: exact sumi = sum_j sc_j sum_e (q - 32) x per super-block,
    acc = acc + (dw * dx) * sumi, in float32. Weights: the reference dequantizer's / (d * sc)."""
    nb = raw.reshape(rows, -1).shape[1] // 210
    b = np.ascontiguousarray(raw).reshape(rows, nb, 210)
    d = b[:, :, 208:210].copy().view(np.float16)[..., 0].astype(np.float32)
    sc = b[:, :, 192:208].view(np.int8).astype(np.int64)  # [rows, nb, 16]
    ql, qh = b[:, :, 0:128].astype(np.int64), b[:, :, 128:192].astype(np.int64)
    q = np.zeros((rows, nb, 256), np.int64)
    for e in range(256):  # dequant_q6_k's index arithmetic
        h, quarter, l = e // 128, (e % 128) // 32, e % 32
        lo = ql[:, :, 64 * h + l + (32 if quarter & 1 else 0)]
        nib = lo & 0x0F if quarter < 2 else lo >> 4
        q[:, :, e] = nib | (((qh[:, :, 32 * h + l] >> (2 * quarter)) & 3) << 4)
    blocks = np.stack([_core.quantize_act(int(Q.Q8_K), r).reshape(-1, 292) for r in x])
    dx = blocks[:, :, 0:4].copy().view(np.float32)[..., 0]
    qx = blocks[:, :, 4:260].view(np.int8).astype(np.int64)
    S = np.einsum("rbje,tbje->trbj", (q - 32).reshape(rows, nb, 16, 16), qx.reshape(x.shape[0], nb, 16, 16))
    sumi = np.einsum("trbj,rbj->trb", S, sc)
    acc = np.zeros((x.shape[0], rows), np.float32)
    for bb in range(nb):
        acc = acc + (d[None, :, bb] * dx[:, bb, None]) * sumi[:, :, bb].astype(np.float32)
    return acc


def x8_canonical(t, raw, rows, x):
    """quant_dot.h's x8 order in float32, one float op at a time: per block, exact int sum S,
    acc = fma(dw * dx, S, acc); Q4_1 / Q5_1: accm = fma(mw, sx, accm); result acc (+ accm)."""
    dw, mw, qw = legacy_ints(t, raw, rows)
    dx, sx, qx = act_ints(t, x)
    S = np.einsum("rbe,tbe->trb", qw, qx)  # exact int64
    acc = np.zeros((x.shape[0], rows), np.float32)
    accm = np.zeros_like(acc)
    for b in range(qw.shape[1]):
        d = dw[None, :, b] * dx[:, b, None]
        acc = fma32(d, S[:, :, b].astype(np.float32), acc)
        if mw is not None:
            accm = fma32(mw[None, :, b], sx[:, b, None], accm)
    return acc + accm if mw is not None else acc


@pytest.mark.parametrize("t", LEGACY, ids=lambda t: t.name)
@pytest.mark.parametrize("rows", [1, 7, 8, 13, 66])
def test_packed_rows_read_back_exactly(t, rows):
    rng = np.random.default_rng(rows + int(t))
    cols = 3 * 32
    raw = random_weights(t, rows, cols, rng)
    back = _core.WeightMatrix(int(t), raw, rows, cols).rows()
    np.testing.assert_array_equal(back, _core.dequantize(int(t), raw, rows * cols).reshape(rows, cols))


@pytest.mark.parametrize("t", LEGACY, ids=lambda t: t.name)
@pytest.mark.parametrize("rows,T,blocks", SHAPES)
def test_packed_matmul_canonical_order(each_x8_isa, t, rows, T, blocks):
    cols = 32 * blocks
    rng = np.random.default_rng(rows * 1000 + T * 10 + blocks)
    raw = random_weights(t, rows, cols, rng)
    x = (rng.standard_normal((T, cols)) + 0.1).astype(np.float32)
    y = _core.WeightMatrix(int(t), raw, rows, cols).matmul(x)
    assert y.shape == (T, rows) and y.dtype == np.float32
    assert y.tobytes() == x8_canonical(t, raw, rows, x).tobytes()
    # And the value is the product: against the same quantized activations, and against floats.
    W = dequant(t, raw, rows).astype(np.float64)
    mag = np.abs(x).astype(np.float64) @ np.abs(W).T
    tight = act_roundtrip(t, x) @ W.T + q8_1_correction(t, raw, rows, x)
    np.testing.assert_array_less(np.abs(y - tight), 2e-5 * mag + 1e-30)
    np.testing.assert_array_less(np.abs(y - x.astype(np.float64) @ W.T), 0.03 * mag + 1e-30)


@pytest.mark.parametrize("t", LEGACY, ids=lambda t: t.name)
def test_packed_matmul_same_bits_alone_batched_threads_and_isas(t):
    rows, T, cols = 75, 21, 7 * 32
    rng = np.random.default_rng(int(t) + 7)
    raw = random_weights(t, rows, cols, rng)
    x = rng.standard_normal((T, cols)).astype(np.float32)
    results = {}
    for isa in LEVELS:
        with llmasos.using_isa(isa):
            y = _core.WeightMatrix(int(t), raw, rows, cols).matmul(x)
            for threads in (2, 3):
                np.testing.assert_array_equal(_core.WeightMatrix(int(t), raw, rows, cols, threads=threads).matmul(x), y)
            m = _core.WeightMatrix(int(t), raw, rows, cols, threads=2)
            for i in (0, 5, T - 1):  # a token alone (decode) equals itself inside the batch
                np.testing.assert_array_equal(m.matmul(x[i:i + 1])[0], y[i])
            results[isa] = y
    for isa, y in results.items():
        assert y.tobytes() == results["generic"].tobytes(), isa


@pytest.mark.parametrize("t", [Q.Q4_1, Q.Q5_0, Q.Q8_0], ids=lambda t: t.name)
def test_packed_precise_matmul_is_closer(t):
    """matmul_precise over a packed matrix: ~16-bit activations, much closer to the float product."""
    rows, T, cols = 24, 5, 8 * 32
    rng = np.random.default_rng(int(t))
    raw = random_weights(t, rows, cols, rng)
    x = rng.standard_normal((T, cols)).astype(np.float32)
    W = dequant(t, raw, rows).astype(np.float64)
    exact = x.astype(np.float64) @ W.T
    y8 = _core.WeightMatrix(int(t), raw, rows, cols).matmul(x)
    y16 = _core.WeightMatrix(int(t), raw, rows, cols).matmul(x, precise=True)
    unpacked16 = _core.WeightMatrix(int(t), raw, rows, cols, packed=False).matmul(x, precise=True)
    mag = np.abs(x).astype(np.float64) @ np.abs(W).T
    assert np.abs(y16 - exact).max() < 0.2 * np.abs(y8 - exact).max()
    # As close to the float product as the in-place path's value + residual products, or closer
    # (Q4_1's 16-bit path keeps the activation sums in float32, Q8_1 stores them as fp16).
    np.testing.assert_array_less(np.abs(y16 - exact), np.abs(unpacked16 - exact).max() + 2e-5 * mag)


def q16_act(x):
    """quant_dot.h's 16-bit activation blocks of x [T, cols]: d (float32 [T, nb]), quants [T, nb, 32]."""
    b = x.reshape(x.shape[0], -1, 32).astype(np.float32)
    d = (np.abs(b).max(axis=2) / np.float32(32767)).astype(np.float32)
    with np.errstate(divide="ignore", over="ignore"):  # 1 / d may be inf, as in the kernels
        inv = np.where(d != 0, np.float32(1) / d, np.float32(0)).astype(np.float32)
    v = (b * inv[..., None]).astype(np.float32)
    return d, np.rint(np.clip(v, -32767, 32767)).astype(np.int64)


PRECISE16 = LEGACY  # the formats whose precise product takes 16-bit activations


def precise16_canonical(t, raw, rows, x):
    """x8 with 16-bit activations (matmul_precise, Q4_0 ... Q8_0): exact S per block (offset
    formats: q - off), acc = fma(dw * dx, S, acc); Q4_1 / Q5_1 also accm = fma(mw, sx, accm),
    sx = dx * sum(q); result acc (+ accm)."""
    dw, mw, qw = legacy_ints(t, raw, rows)
    dx, qx = q16_act(x)
    S = np.einsum("rbe,tbe->trb", qw, qx)
    sx = dx * qx.sum(axis=2).astype(np.float32)
    acc = np.zeros((x.shape[0], rows), np.float32)
    accm = np.zeros_like(acc)
    for b in range(qw.shape[1]):
        acc = fma32(dw[None, :, b] * dx[:, b, None], S[:, :, b].astype(np.float32), acc)
        if mw is not None:
            accm = fma32(mw[None, :, b], sx[:, b, None], accm)
    return acc + accm if mw is not None else acc


@pytest.mark.parametrize("t", PRECISE16, ids=lambda t: t.name)
@pytest.mark.parametrize("rows,T,blocks", SHAPES)
def test_packed_precise16_canonical_order(each_x8_isa, t, rows, T, blocks):
    """Packed Q4_0 ... Q8_0 precise products: one product with 16-bit activations, the canonical
    order bit for bit (a zero block included)."""
    cols = 32 * blocks
    rng = np.random.default_rng(rows * 7 + T * 3 + blocks)
    raw = random_weights(t, rows, cols, rng)
    x = (rng.standard_normal((T, cols)) * 3).astype(np.float32)
    x[0, :32] = 0.0
    if T > 1:
        x[1, 5] = 1e4
    want = precise16_canonical(t, raw, rows, x)
    for threads in (1, 3):
        y = _core.WeightMatrix(int(t), raw, rows, cols, threads=threads).matmul(x, precise=True)
        assert y.tobytes() == want.tobytes()


@pytest.mark.parametrize("t", PRECISE16, ids=lambda t: t.name)
def test_packed_precise16_quantizer_edges(t):
    """The 16-bit quantizer on NaN, infinities, ties, -0.0, denormals and scales whose inverse
    overflows, through the product (every level the same): a NaN element quantizes to 0 and never
    sets the scale; ties round to even; quants clamp at +-32767."""
    rows, cols = 8, 64
    rng = np.random.default_rng(3)
    raw = random_weights(t, rows, cols, rng)
    x = rng.standard_normal((5, cols)).astype(np.float32)
    x[0, 3] = np.nan
    x[1, :32] = np.arange(32, dtype=np.float32) - np.float32(15.5)  # d = 1: every quant a tie
    x[1, 0] = 32767
    x[3, :32] = rng.standard_normal(32).astype(np.float32) * np.float32(1e-36)  # 1 / d overflows:
    x[3, 32:] = np.float32(1e-45) * np.arange(32, dtype=np.float32)  # quants clamp at +-32767
    x[3, 33] = -0.0
    x[4, 7] = -np.inf
    x[2, 40] = np.inf
    outs = {}
    for isa in LEVELS:
        with llmasos.using_isa(isa):
            outs[isa] = _core.WeightMatrix(int(t), raw, rows, cols).matmul(x, precise=True)
    for isa, y in outs.items():
        assert y.tobytes() == outs["generic"].tobytes(), isa
    clean = x.copy()
    clean[0, 3] = 0.0
    for i in (0, 1, 3):
        want = precise16_canonical(t, raw, rows, clean[i:i + 1])
        assert outs["generic"][i:i + 1].tobytes() == want.tobytes(), i
    for i in (2, 4):  # an infinite element: d = inf, every output NaN
        assert np.isnan(outs["generic"][i]).all()


@pytest.mark.parametrize("t", [Q.Q4_K, Q.Q5_K, Q.Q6_K], ids=lambda t: t.name)
@pytest.mark.parametrize("rows,T,blocks", [(1, 1, 1), (13, 5, 2), (8, 4, 3), (30, 9, 1), (40, 37, 2), (9, 20, 1)])
def test_packed_k_quants(each_x8_isa, t, rows, T, blocks):
    cols = 256 * blocks
    rng = np.random.default_rng(rows * 100 + T)
    raw = random_weights(t, rows, cols, rng)
    m = _core.WeightMatrix(int(t), raw, rows, cols, threads=2)
    np.testing.assert_array_equal(m.rows(), _core.dequantize(int(t), raw, rows * cols).reshape(rows, cols))
    x = (rng.standard_normal((T, cols)) + 0.1).astype(np.float32)
    y = m.matmul(x)
    canonical = q6_k_canonical(raw, rows, x) if t == Q.Q6_K else k4_canonical(t, raw, rows, x)
    assert y.tobytes() == canonical.tobytes()
    W = dequant(t, raw, rows).astype(np.float64)
    mag = np.abs(x).astype(np.float64) @ np.abs(W).T
    np.testing.assert_array_less(np.abs(y - act_roundtrip(t, x) @ W.T), 2e-5 * mag + 1e-30)
    for i in range(T):  # alone == batched
        np.testing.assert_array_equal(m.matmul(x[i:i + 1])[0], y[i])


def test_packed_matmul_rejects_formats_without_packing():
    rng = np.random.default_rng(0)
    raw = random_weights(Q.F16, 8, 64, rng)
    with pytest.raises(llmasos.LLMasOSError, match="x8"):
        _core.WeightMatrix(int(Q.F16), raw, 8, 64)
