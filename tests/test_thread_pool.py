"""The persistent thread pool runs every item of every job exactly once, however quickly jobs of
different sizes follow each other (a late worker must never claim an item of the next job)."""
import subprocess
import sys

import pytest

from llmasos import _core


@pytest.mark.parametrize("threads", [2, 3, 8])
def test_pool_runs_each_item_once(threads):
    # In a child with a deadline: the failure this guards against was a caller spinning forever.
    code = f"from llmasos import _core; print(_core.pool_stress({threads}, 200000))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "0"


def test_pool_stress_in_process():
    assert _core.pool_stress(2, 1000) == 0
