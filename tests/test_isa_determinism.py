"""Every ISA level computes bit-identical results: all kernels follow one canonical order of float
operations (csrc/kernels/cpu/quant_dot.h), so matmul, dequantize, the activation quantizers and
the dense ops give the same bytes under every level this machine supports."""
import numpy as np
import pytest
from gguf import GGMLQuantizationType as Q

import llmasos
from llmasos import _core
from test_quant_kernels import FLOATS, WEIGHT_TYPES, block_size, info, random_weights

# The hardware levels, then the emulated ones (amx_emu: the tile kernels on a scalar model).
ISAS = _core.supported_isas() + _core.emulated_isas()
# Blocks per row around the SIMD group sizes (pairs, 8-block groups) and their tails.
BLOCKS = [1, 2, 3, 7, 8, 9, 15, 16, 17, 18, 33]
FLOAT_LENGTHS = [1, 5, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 576, 1000]


def under_each_isa(fn):
    """{isa: fn()} for every supported level, restoring the active level afterwards."""
    out = {}
    for isa in ISAS:
        with llmasos.using_isa(isa):
            out[isa] = fn()
    return out


def assert_bitwise_equal(results):
    base_isa = ISAS[0]
    base = np.ascontiguousarray(results[base_isa])
    for isa, got in results.items():
        got = np.ascontiguousarray(got)
        assert got.shape == base.shape and got.dtype == base.dtype, isa
        same = got.tobytes() == base.tobytes()
        if not same:
            diff = np.flatnonzero(got.view(np.uint8) != base.view(np.uint8))
            pytest.fail(f"{isa} differs from {base_isa} at byte {diff[0]} of {base.nbytes}")


def test_levels_present():
    assert ISAS[0] == "generic"
    # A CPU with AVX2 runs the avx2 level whenever the build compiled it (a generic-only portable
    # build, -DLLMASOS_ISA_LEVELS=generic, has nothing else to compare).
    if "avx2" in _core.compiled_isas() and "avx2" in _core.cpu_features() and "fma" in _core.cpu_features():
        assert "avx2" in ISAS  # this machine: generic == avx2 is checked by every test below


@pytest.mark.parametrize("t", WEIGHT_TYPES, ids=lambda t: t.name)
def test_matmul_bitwise_identical(t):
    rng = np.random.default_rng(int(t) + 7)
    bs = block_size(t)
    for blocks in BLOCKS if bs == 32 else BLOCKS[:6]:
        cols = blocks * bs if bs > 1 else FLOAT_LENGTHS[blocks % len(FLOAT_LENGTHS)] + 32 * blocks
        rows, T = 11, 5
        raw = random_weights(t, rows, cols, rng)
        x = (rng.standard_normal((T, cols)) * rng.uniform(0.1, 10)).astype(np.float32)
        x[1] = np.abs(x[1])  # all-positive activations: large sums of one sign
        x[2, : min(cols, 32)] = 0.0  # a zero block
        assert_bitwise_equal(under_each_isa(lambda: _core.matmul(int(t), raw, rows, cols, x)))
        assert_bitwise_equal(
            under_each_isa(lambda: _core.matmul(int(t), raw, rows, cols, x, threads=3)))


@pytest.mark.parametrize("t", FLOATS, ids=lambda t: t.name)
def test_float_dots_every_length(t):
    rng = np.random.default_rng(int(t) + 70)
    for n in FLOAT_LENGTHS:
        raw = random_weights(t, 3, n, rng)
        x = rng.standard_normal((2, n)).astype(np.float32)
        assert_bitwise_equal(under_each_isa(lambda: _core.matmul(int(t), raw, 3, n, x)))


@pytest.mark.parametrize("t", WEIGHT_TYPES, ids=lambda t: t.name)
def test_dequantize_bitwise_identical(t):
    rng = np.random.default_rng(int(t) + 11)
    n = 5 * block_size(t) if t not in FLOATS else 77
    raw = random_weights(t, 1, n, rng).reshape(-1)
    assert_bitwise_equal(under_each_isa(lambda: _core.dequantize(int(t), raw, n)))


@pytest.mark.parametrize("act", [Q.Q8_0, Q.Q8_1, Q.Q8_K], ids=lambda t: t.name)
def test_activation_quantizers_bitwise_identical(act):
    rng = np.random.default_rng(int(act))
    x = (rng.standard_normal(256 * 8) * 5).astype(np.float32)
    x[256:512] = 0.0
    x[600:632] = np.abs(x[600:632])
    # Q8_K's scale comes from the first element of largest magnitude: ties of opposite sign.
    x[700], x[720] = 40.0, -40.0
    if act == Q.Q8_K:
        x[1000] = np.nan  # never Q8_K's maximum (Q8_0 / Q8_1 make no promise for NaN input)
    # Exact halves after scaling (max -127: scale 1): rounding ties go to even.
    x[1280:1536] = np.arange(256, dtype=np.float32) % 100 - 49.5
    x[1290] = -127.0
    x[1536:1792] = np.abs(x[1536:1792])  # one sign: the opposite end may reach +127
    assert_bitwise_equal(under_each_isa(lambda: _core.quantize_act(int(act), x)))


DENSE = {
    "dot_f32": lambda x, y: _core.kernel_op("dot_f32", x, y),
    "rmsnorm": lambda x, y: _core.kernel_op("rmsnorm", x, y, 1e-5),
    "silu_mul": lambda x, y: _core.kernel_op("silu_mul", x, y),
    "gelu_mul": lambda x, y: _core.kernel_op("gelu_mul", x, y),
    "softcap": lambda x, y: _core.kernel_op("softcap", x, a=2.5),
    "axpy": lambda x, y: _core.kernel_op("axpy", x, y, 0.37),
    "scale": lambda x, y: _core.kernel_op("scale", x, a=1.7),
    "softmax": lambda x, y: _core.kernel_op("softmax", x),
}


@pytest.mark.parametrize("op", sorted(DENSE))
def test_dense_ops_bitwise_identical(op):
    rng = np.random.default_rng(len(op))
    for n in FLOAT_LENGTHS:
        x = (rng.standard_normal(n) * 3).astype(np.float32)
        y = (rng.standard_normal(n) + 0.5).astype(np.float32)
        assert_bitwise_equal(under_each_isa(lambda: DENSE[op](x, y)))


@pytest.mark.parametrize("op", ["silu_mul", "gelu_mul", "softcap", "softmax"])
def test_exp_ops_bitwise_identical_at_the_edges(op):
    """The exp-based ops past exp's clamps (|x| > 87), at infinities, NaN, signed zeros and
    denormals, in runs long enough for every level's vector paths (8 and 4 x 8 lanes) and tails."""
    edges = np.array([0.0, -0.0, 1e-40, -1e-40, 87.2, 87.4, 88.2, 88.4, -87.2, -87.4, 89.0, -89.0,
                      100.0, -100.0, 1e30, -1e30, np.inf, -np.inf, np.nan, 0.5, -0.5, 20.0, -20.0],
                     dtype=np.float32)
    rng = np.random.default_rng(11)
    for n in (23, 64, 95, 127):
        x = rng.permutation(np.resize(edges, n)).astype(np.float32)
        y = (rng.standard_normal(n) + 0.5).astype(np.float32)
        # Bit for bit but for which NaN comes out (x86 passes on the first operand's NaN, and
        # 0 * inf or inf - inf makes the negative default NaN): NaN where the reference has NaN.
        got = under_each_isa(lambda: DENSE[op](x, y))
        ref = got[ISAS[0]]
        for isa, v in got.items():
            assert np.array_equal(np.isnan(v), np.isnan(ref)), isa
            assert np.array_equal(v[~np.isnan(v)].view(np.uint32), ref[~np.isnan(ref)].view(np.uint32)), isa
        if op == "softmax":  # without NaN / inf, so the values themselves are checked too
            xf = np.where(np.isfinite(x), np.clip(x, -200, 200), 0.0).astype(np.float32)
            got = under_each_isa(lambda: DENSE[op](xf, y))
            assert_bitwise_equal(got)
            e = np.exp(xf.astype(np.float64) - xf.max())
            np.testing.assert_allclose(next(iter(got.values())), e / e.sum(), rtol=1e-5, atol=1e-30)


@pytest.mark.parametrize("neox", [False, True])
def test_rope_bitwise_identical_and_the_scalar_formula(neox):
    """RoPE under every level: the same bits, and those of x0 cos - x1 sin, x1 cos + x0 sin with
    each product and difference rounded to float32 (the factors read off unit vectors), for
    partial rotation (rope_dim < head_dim) and head sizes off the vector widths."""
    rng = np.random.default_rng(17)
    for T, H, D, rd, pos0 in ((3, 5, 64, 64, 7), (2, 3, 80, 48, 4000), (2, 2, 6, 2, 1), (1, 4, 36, 34, 99),
                              (1, 2, 2050, 2048, 5)):  # rotated parts past any fixed buffer
        x = (rng.standard_normal((T, H, D)) * 3).astype(np.float32)
        got = under_each_isa(lambda: _core.device_rope("cpu", x, pos0, rd, 10000.0, neox))
        assert_bitwise_equal(got)
        half = rd // 2
        first = np.arange(half) * 2 if not neox else np.arange(half)  # each pair's two elements
        second = first + 1 if not neox else first + half
        probe = np.zeros((T, 1, D), np.float32)
        probe[:, 0, first] = 1.0
        cs = _core.device_rope("cpu", probe, pos0, rd, 10000.0, neox)[:, 0]
        c, s = cs[:, first], cs[:, second]  # (1, 0) rotates to (cos, sin)
        x0, x1 = x[:, :, first], x[:, :, second]
        want = x.copy()
        want[:, :, first] = (x0 * c[:, None]) - (x1 * s[:, None])
        want[:, :, second] = (x0 * s[:, None]) + (x1 * c[:, None])
        assert got[ISAS[0]].tobytes() == want.tobytes(), (T, H, D, rd)


def test_f16_conversion_matches_numpy_at_every_level():
    """The KV cache's float -> F16 conversion (vectorized per level) against numpy's float16:
    round to nearest even, ties, overflow to inf, subnormals, signed zeros; NaN stays NaN."""
    rng = np.random.default_rng(5)
    half_ulp = np.float32(2.0 ** -11)  # 1 + half an F16 ulp: a tie
    x = np.concatenate([
        rng.standard_normal(300).astype(np.float32) * 1000,
        np.array([0.0, -0.0, 1.0 + half_ulp, 1.0 + 3 * half_ulp, 65504.0, 65519.0, 65520.0, -65520.0,
                  1e-5, 6e-8, 2.9e-8, 3e-8, -6e-8, 1e-45, np.inf, -np.inf, np.nan, 1e30],
                 dtype=np.float32),
        (rng.standard_normal(100) * 1e-6).astype(np.float32)])
    got = under_each_isa(lambda: _core.kernel_op("f32_to_f16", x))
    with np.errstate(over="ignore"):
        want = x.astype(np.float16).view(np.uint16)
    for isa, bits in got.items():
        bits = bits.astype(np.uint16)
        nan = np.isnan(x)
        np.testing.assert_array_equal(bits[~nan], want[~nan], err_msg=isa)
        assert np.all(bits[nan] & 0x7fff == 0x7e00), isa


def test_dense_ops_against_numpy():
    """kernel_op computes what it says (the hook itself is right)."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal(77).astype(np.float32)
    y = rng.standard_normal(77).astype(np.float32)
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    np.testing.assert_allclose(_core.kernel_op("dot_f32", x, y)[0], x64 @ y64, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(_core.kernel_op("rmsnorm", x, y, 1e-5),
                               x64 / np.sqrt((x64 ** 2).mean() + 1e-5) * y64, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_core.kernel_op("silu_mul", x, y), x64 / (1 + np.exp(-x64)) * y64,
                               rtol=1e-5, atol=1e-6)
    gelu = 0.5 * x64 * (1 + np.tanh(np.sqrt(2 / np.pi) * (x64 + 0.044715 * x64 ** 3)))
    np.testing.assert_allclose(_core.kernel_op("gelu_mul", x, y), gelu * y64, rtol=1e-5, atol=1e-6)
    big = np.array([-30.0, -10.0, -5.0, 5.0, 10.0, 30.0, 1e20, -1e20], dtype=np.float32)
    np.testing.assert_allclose(_core.kernel_op("gelu_mul", big, np.ones_like(big)),
                               np.where(big > 0, big, 0.0), rtol=1e-6, atol=1e-5)
    xs = np.concatenate([x * 10, [0.0, -0.0, 1e-30, 200.0, -200.0, 1e30, -np.inf, np.inf]]).astype(np.float32)
    capped = _core.kernel_op("softcap", xs, a=3.0)
    np.testing.assert_allclose(capped, 3.0 * np.tanh(xs.astype(np.float64) / 3.0), rtol=2e-6, atol=3e-7)
    assert np.signbit(capped[xs == 0]).tolist() == np.signbit(xs[xs == 0]).tolist()
    with pytest.raises(Exception):
        _core.kernel_op("softcap", xs, a=0.0)
    np.testing.assert_allclose(_core.kernel_op("axpy", x, y, 0.5), x64 + 0.5 * y64, rtol=1e-6)
    np.testing.assert_allclose(_core.kernel_op("scale", x, a=2.0), 2 * x64, rtol=1e-7)
    e = np.exp(x64 - x64.max())
    np.testing.assert_allclose(_core.kernel_op("softmax", x), e / e.sum(), rtol=1e-5, atol=1e-7)
    with pytest.raises(Exception):
        _core.kernel_op("nope", x)
    with pytest.raises(Exception):
        _core.kernel_op("dot_f32", x, y[:5])


def test_vec_dot_types_are_used_by_the_real_model():
    """The formats of the default model (Q4_1 layers, Q8_0 head) at the model's width."""
    rng = np.random.default_rng(5)
    for t, rows in ((Q.Q4_1, 64), (Q.Q8_0, 64)):
        raw = random_weights(t, rows, 576, rng)
        x = rng.standard_normal((3, 576)).astype(np.float32)
        assert info(t)["block_size"] == 32
        assert_bitwise_equal(under_each_isa(lambda: _core.matmul(int(t), raw, rows, 576, x)))


@pytest.mark.parametrize("t", WEIGHT_TYPES, ids=lambda t: t.name)
def test_prefill_path_equals_vec_dot(t):
    """Many tokens per matmul (the 4-token vec_dot_4x kernels and their T % 4 tail) give, for
    every (row, token), the bits of the one-token path (vec_dot), under every level and thread
    count: awkward T (1..9), rows and blocks per row (odd counts leave an unpaired block)."""
    rng = np.random.default_rng(int(t) + 300)
    bs = block_size(t)
    shapes = [(1, 1), (3, 2), (5, 3), (13, 7), (33, 18)] if bs == 32 else [(1, 1), (5, 2), (13, 3)]
    for rows, blocks in shapes:
        cols = blocks * bs if bs > 1 else 32 * blocks + 5
        raw = random_weights(t, rows, cols, rng)
        for T in range(1, 10):
            x = (rng.standard_normal((T, cols)) * rng.uniform(0.1, 10)).astype(np.float32)
            x[0] = np.abs(x[0])  # one all-positive token
            if T > 2:
                x[2, : min(cols, 32)] = 0.0  # a zero block
            def run():
                one = np.concatenate([_core.matmul(int(t), raw, rows, cols, x[i:i + 1])
                                      for i in range(T)])
                for threads in (1, 2, 3):
                    many = _core.matmul(int(t), raw, rows, cols, x, threads=threads)
                    assert many.tobytes() == one.tobytes(), (rows, blocks, T, threads)
                return one
            assert_bitwise_equal(under_each_isa(run))


def test_prefill_large_matrix_every_level():
    """Model-sized Q4_1 / Q8_0 products with many tokens (dynamic row chunks across threads), and
    rows longer than the kernels' table of token scales (513 blocks: scales widened per row)."""
    rng = np.random.default_rng(31)
    for t, rows, cols, T in ((Q.Q4_1, 300, 576, 37), (Q.Q8_0, 300, 576, 37),
                             (Q.Q4_1, 9, 513 * 32, 6), (Q.Q8_0, 9, 513 * 32, 6)):
        raw = random_weights(t, rows, cols, rng)
        x = rng.standard_normal((T, cols)).astype(np.float32)
        def run():
            one = np.concatenate([_core.matmul(int(t), raw, rows, cols, x[i:i + 1]) for i in range(T)])
            for threads in (1, 2, 4):
                assert _core.matmul(int(t), raw, rows, cols, x, threads=threads).tobytes() == one.tobytes()
            return one
        assert_bitwise_equal(under_each_isa(run))


def test_using_isa_restores_the_level_and_rejects_unknown_ones():
    before = _core.active_isa()
    with llmasos.using_isa("generic") as lv:
        assert lv == "generic" and _core.active_isa() == "generic"
    assert _core.active_isa() == before
    with pytest.raises(RuntimeError):  # restored even when the block fails
        with llmasos.using_isa("generic"):
            raise RuntimeError("inside")
    assert _core.active_isa() == before
    for bad in ("bogus", ""):
        with pytest.raises(llmasos.InvalidArgumentError, match="ISA level"):
            with llmasos.using_isa(bad):
                pass
        assert _core.active_isa() == before
