"""_core.gemm_f32 (C = A @ B in float32) against a numpy float64 reference under every ISA level, on
awkward sizes (not multiples of any register tile or cache block); bit-identical across levels and
thread counts (one canonical order, csrc/kernels/cpu/gemm_f32.h); clear errors for bad shapes."""
import numpy as np
import pytest

import llmasos
from llmasos import _core
from test_isa_determinism import assert_bitwise_equal, under_each_isa

ODD = [1, 3, 7, 17, 31, 33, 65, 100, 257]
# (M, N, K): every odd size in each role, mixes of them, and sizes past the cache blocks (K beyond
# one kc step: 512 at avx2, 768 at avx512; M beyond one mc block, N beyond one item's columns).
SHAPES = ([(n, n, n) for n in ODD] + [(1, 257, 33), (257, 1, 65), (33, 65, 1), (7, 100, 257),
          (100, 7, 31), (17, 31, 257), (65, 33, 100), (3, 1, 7), (300, 290, 1100)])


def operands(M, N, K, seed):
    rng = np.random.default_rng(seed)
    a = (rng.standard_normal((M, K)) * rng.uniform(0.5, 4)).astype(np.float32)
    b = rng.standard_normal((K, N)).astype(np.float32)
    a[0] = np.abs(a[0])  # an all-positive row: a long sum of one sign
    return a, b


def check_close(c, a, b):
    """Float32 sums of K fused products: each step's rounding error is at most 2^-24 of the
    running magnitude, so |error| <= K * 2^-23 * sum_k |a_ik * b_kj| with a margin (a stated
    bound, not a tuned one)."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    ref = a64 @ b64
    scale = np.abs(a64) @ np.abs(b64)
    K = a.shape[1]
    bound = K * 2.0 ** -23 * scale + 1e-30
    err = np.abs(c.astype(np.float64) - ref)
    assert c.dtype == np.float32 and c.shape == ref.shape
    assert np.all(err <= bound), f"max error / bound {np.max(err / bound):.3g}"
    # Typical accuracy is far better than the worst-case bound.
    np.testing.assert_allclose(c, ref, rtol=1e-4, atol=1e-4 * np.max(scale))


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_gemm_matches_float64_reference(each_isa, shape):
    a, b = operands(*shape, seed=sum(shape))
    check_close(_core.gemm_f32(a, b), a, b)
    check_close(_core.gemm_f32(a, b, threads=2), a, b)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_gemm_bitwise_identical_across_levels_and_threads(shape):
    a, b = operands(*shape, seed=7 * sum(shape))

    def run():
        one = _core.gemm_f32(a, b, threads=1)
        for threads in (2, 3):
            assert _core.gemm_f32(a, b, threads=threads).tobytes() == one.tobytes(), threads
        return one

    assert_bitwise_equal(under_each_isa(run))


def test_gemm_long_k_packs_several_blocks():
    """K = 30000: A's rows and B's columns no longer fit one packed block (16 MiB each), so the
    driver packs and multiplies block by block; same bits at every level and thread count."""
    a, b = operands(150, 230, 30000, seed=5)

    def run():
        one = _core.gemm_f32(a, b, threads=1)
        assert _core.gemm_f32(a, b, threads=2).tobytes() == one.tobytes()
        return one

    results = under_each_isa(run)
    assert_bitwise_equal(results)
    check_close(results["generic"], a, b)


def fma32(a, b, c):
    """float32 fma(a, b, c), correctly rounded, elementwise in numpy: the float64 product of two
    floats is exact; their sum with c is rounded to odd (the float64 sum, moved to the neighbour
    with an odd last bit when TwoSum says it was inexact), and a float64 rounded to odd rounds to
    float32 as the exact value would (53 >= 2 * 24 + 2 bits: Boldo and Melquiond)."""
    p = np.asarray(a, np.float64) * np.asarray(b, np.float64)
    c = np.broadcast_to(np.asarray(c, np.float64), p.shape)
    s = p + c
    bb = s - p
    with np.errstate(invalid="ignore"):
        e = (p - (s - bb)) + (c - bb)  # p + c == s + e exactly (finite s)
    even = (s.view(np.uint64) & 1) == 0
    fix = np.isfinite(s) & (e != 0) & even
    s = np.where(fix, np.nextafter(s, np.where(e > 0, np.inf, -np.inf)), s)
    return s.astype(np.float32)


def hard_fma_cases(n, seed):
    """a, b, c with products and addends of mixed magnitudes and signs: exact ties, cancellations
    and results down in the float subnormals among them."""
    rng = np.random.default_rng(seed)
    a = (rng.standard_normal(n) * 2.0 ** rng.integers(-20, 20, n)).astype(np.float32)
    b = (rng.standard_normal(n) * 2.0 ** rng.integers(-20, 20, n)).astype(np.float32)
    c = (-(a.astype(np.float64) * b) * (1 + rng.integers(-3, 4, n) * 2.0 ** -24)).astype(np.float32)
    c[::3] = (rng.standard_normal(len(c[::3])) * 2.0 ** rng.integers(-40, 40, len(c[::3]))).astype(np.float32)
    sub = slice(1, None, 7)  # products near 2^-140 against subnormal addends
    a[sub] = (rng.standard_normal(len(a[sub])) * 2.0 ** -70).astype(np.float32)
    b[sub] = (rng.standard_normal(len(b[sub])) * 2.0 ** -70).astype(np.float32)
    c[sub] = (rng.standard_normal(len(c[sub])) * 2.0 ** -140).astype(np.float32)
    # Double rounding traps: a * b + c lies just below a float tie (by 2^-70 of c), so rounding
    # the sum to double first lands on the tie, and ties-to-even then rounds away from c.
    trap = slice(2, None, 11)
    m = len(a[trap])
    e = rng.integers(-30, 30, m).astype(np.float64)
    sign = rng.choice([-1.0, 1.0], m)
    a[trap] = (sign * (1 + 2.0 ** -23) * 2.0 ** e).astype(np.float32)
    b[trap] = np.float32((1 - 2.0 ** -23) * 2.0 ** -24)
    c[trap] = (sign * (1 + 2.0 ** -23) * 2.0 ** e).astype(np.float32)
    return a, b, c


def test_fma32_replay_is_correctly_rounded():
    """The replay's fma against exact rational arithmetic, on hard_fma_cases."""
    from fractions import Fraction
    n = 3000
    a, b, c = hard_fma_cases(n, seed=17)
    got = fma32(a, b, c)
    for i in range(n):
        exact = Fraction(float(a[i])) * Fraction(float(b[i])) + Fraction(float(c[i]))
        g = np.float32(got[i])
        lo, hi = np.nextafter(g, np.float32(-np.inf)), np.nextafter(g, np.float32(np.inf))
        err = abs(Fraction(float(g)) - exact)
        for nb in (lo, hi):  # no neighbour is closer; on a tie, g has the even last bit
            d = abs(Fraction(float(nb)) - exact)
            assert err < d or (err == d and (g.view(np.uint32) & 1) == 0), (a[i], b[i], c[i])


def test_gemm_fused_terms_are_correctly_rounded_at_every_level():
    """Each level's fused multiply-add (the instruction, or the generic level's exact double
    emulation) on hard cases: C = [1 | a] x [c ; b] makes each diagonal term fma(a_i, b_i, c_i)."""
    n = 1500
    a, b, c = hard_fma_cases(n, seed=23)
    A = np.stack([np.ones(n, np.float32), a], axis=1)
    B = np.stack([c, b], axis=0)
    want = fma32(a, b, c)
    for isa, got in under_each_isa(lambda: _core.gemm_f32(A, B, threads=2)).items():
        assert np.diagonal(got).tobytes() == want.tobytes(), isa


def test_gemm_follows_the_canonical_order():
    """Each output is c = 0; c = fma(a_ik, b_kj, c) for k in increasing order, in float32 (one
    rounding per term, no reassociation): replayed in numpy, bit for bit, at every level."""
    a, b = operands(9, 21, 67, seed=3)
    a[1] *= 1e6  # wide magnitudes make any other order visible
    a[2, ::2] = -a[2, ::2]
    want = np.zeros((9, 21), dtype=np.float32)
    for k in range(67):
        want = fma32(a[:, k:k + 1], b[k:k + 1, :], want)
    got = under_each_isa(lambda: _core.gemm_f32(a, b, threads=2))
    for isa, c in got.items():
        assert c.tobytes() == want.tobytes(), isa
    # And not the unfused order (product rounded, then added): the test tells them apart.
    unfused = np.zeros((9, 21), dtype=np.float32)
    for k in range(67):
        unfused = unfused + (a[:, k:k + 1] * b[k:k + 1, :])
    assert unfused.tobytes() != want.tobytes()


def test_gemm_negative_zero_products_sum_to_positive_zero():
    """The sum starts at +0: a single product of -0 gives +0, as the plain loop does."""
    a = np.array([[-0.0], [1.0]], dtype=np.float32)
    b = np.array([[1.0, -0.0]], dtype=np.float32)
    got = under_each_isa(lambda: _core.gemm_f32(a, b))
    for c in got.values():
        assert not np.signbit(c).any()


def test_gemm_accepts_non_contiguous_and_other_dtypes_by_copy():
    a, b = operands(31, 17, 33, seed=11)
    ref = _core.gemm_f32(a, b)
    assert _core.gemm_f32(np.asfortranarray(a), b).tobytes() == ref.tobytes()
    assert _core.gemm_f32(a.astype(np.float64), b).tobytes() == ref.tobytes()


@pytest.mark.parametrize("a_shape,b_shape,match", [
    ((3, 4), (5, 2), "rows"),           # K mismatch
    ((4,), (4, 2), "2-d"),              # a is 1-d
    ((3, 4), (4, 2, 1), "2-d"),         # b is 3-d
    ((0, 4), (4, 2), "empty"),          # M = 0
    ((3, 0), (0, 2), "empty"),          # K = 0
    ((3, 4), (4, 0), "empty"),          # N = 0
])
def test_gemm_bad_shapes(a_shape, b_shape, match):
    a = np.ones(a_shape, dtype=np.float32)
    b = np.ones(b_shape, dtype=np.float32)
    with pytest.raises(llmasos.InvalidArgumentError, match=match):
        _core.gemm_f32(a, b)


def test_gemm_bad_thread_count():
    a = np.ones((2, 2), dtype=np.float32)
    with pytest.raises(llmasos.InvalidArgumentError, match="threads"):
        _core.gemm_f32(a, a, threads=0)
