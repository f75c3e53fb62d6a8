"""Shared fixtures: the real models (fetched once into the store cache), a server on the default
model, and ISA levels."""
import pytest

import llmasos
from llmasos import _core, store


@pytest.fixture(scope="session")
def smollm2_gguf():
    """Path of the SmolLM2-135M-Instruct Q4_1 GGUF (the default model)."""
    return str(store.resolve(store.DEFAULT_MODEL))


@pytest.fixture(scope="session")
def gemma3_gguf():
    """Path of the Gemma 3 270M Q4_K_M GGUF (four PyPI chunk packages, joined by the store)."""
    return str(store.resolve("gemma3-270m"))


@pytest.fixture(scope="module")
def server(smollm2_gguf):
    """`llmasos serve` on the default model, for one test module (test_server.RunningServer);
    modules that need other flags define their own."""
    from test_server import RunningServer
    s = RunningServer(smollm2_gguf)
    yield s
    s.stop()


def _under_isa(name):
    with llmasos.using_isa(name):
        yield name


@pytest.fixture(params=_core.supported_isas())
def each_isa(request):
    """Runs the test once under every ISA level this machine supports, restoring the default."""
    yield from _under_isa(request.param)


@pytest.fixture(params=_core.supported_isas() + _core.emulated_isas())
def each_x8_isa(request):
    """each_isa plus the levels that run the tile kernels on the scalar tile model (amx_emu): the
    x8 products' layouts and order checked on machines without AMX."""
    yield from _under_isa(request.param)
