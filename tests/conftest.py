"""Shared fixtures: the real default model (fetched once into the store cache) and ISA levels."""
import pytest

import llmasos
from llmasos import _core, store


@pytest.fixture(scope="session")
def smollm2_gguf():
    """Path of the SmolLM2-135M-Instruct Q4_1 GGUF (the default model)."""
    return str(store.resolve(store.DEFAULT_MODEL))


@pytest.fixture(params=_core.supported_isas())
def each_isa(request):
    """Runs the test once under every ISA level this machine supports, restoring the default."""
    before = _core.active_isa()
    _core.select_isa(request.param)
    try:
        yield request.param
    finally:
        _core.select_isa(before)
