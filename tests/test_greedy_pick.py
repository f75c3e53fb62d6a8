"""Greedy sampling's pick over one row of logits: the first largest logit, with NaN never drawn
and +inf taken as the largest float, whatever the row's length (the pick runs in 16 lanes plus a
tail)."""
import numpy as np
import pytest

from llmasos import _core


def expected(row):
    x = np.array(row, dtype=np.float32)
    x[np.isnan(x)] = -np.inf
    x[x == np.inf] = np.finfo(np.float32).max
    return int(np.argmax(x))  # numpy's argmax: the first of equal maxima


@pytest.mark.parametrize("n", [1, 2, 15, 16, 17, 31, 33, 100, 49152])
def test_greedy_pick_is_first_largest(n):
    rng = np.random.default_rng(n)
    for trial in range(20):
        row = rng.integers(-4, 5, size=n).astype(np.float32)  # many ties
        if trial % 4 == 1:
            row[rng.integers(0, n, size=max(1, n // 7))] = np.nan
        if trial % 4 == 2:
            row[rng.integers(0, n, size=max(1, n // 9))] = -np.inf
        if trial % 4 == 3:
            row[rng.integers(0, n, size=2)] = np.inf
        assert _core.greedy_pick(row.tolist()) == expected(row), (n, trial)


def test_greedy_pick_non_finite_rows():
    big = float(np.finfo(np.float32).max)
    assert _core.greedy_pick([float("nan")] * 20) == 0       # nothing drawable: the first id
    assert _core.greedy_pick([-np.inf] * 20) == 0
    assert _core.greedy_pick([float("nan")] * 19 + [1.0]) == 19
    assert _core.greedy_pick([1.0, np.inf, big, np.inf] + [0.0] * 30) == 1  # +inf ties the largest float
    assert _core.greedy_pick([1.0, big, np.inf] + [0.0] * 30) == 1
    assert _core.greedy_pick([-0.0] * 17 + [0.0] * 17) == 0   # -0 == 0: the first
    with pytest.raises(_core.InvalidArgumentError):
        _core.greedy_pick([])
