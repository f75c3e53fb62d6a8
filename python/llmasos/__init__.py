"""llmasos: run and serve large language models on your own hardware.

    from llmasos import LLM
    llm = LLM.from_pretrained("smollm2-135m-instruct")
    print(llm.generate_text(prompt="The world is"))
"""
import contextlib
import logging
import os

from ._core_loader import _core
from .chat_template import ChatTemplateError
from .engine import AsyncEngine, StreamDelta
from .llm import LLM
from .logprobs import Logprob
from .sampling import GenerationOutput, SamplingParams
from .store import ModelNotFoundError

__version__ = _core.__version__
LLMasOSError = _core.LLMasOSError
ModelFormatError = _core.ModelFormatError
InvalidArgumentError = _core.InvalidArgumentError

# The kernel level chosen at import (cpuid + XGETBV, or LLMASOS_FORCE_ISA), said once.
logging.getLogger("llmasos").debug("kernels: %s (this CPU supports %s; compiled %s; AMX: %s)", _core.active_isa(),
                                   ", ".join(_core.supported_isas()), ", ".join(_core.compiled_isas()),
                                   _core.amx_status())


def default_threads() -> int:
    """Threads a model uses when none are given: LLMASOS_THREADS, else the physical cores."""
    env = os.environ.get("LLMASOS_THREADS")
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    return _core.physical_cores()


def runtime_info() -> dict:
    """What this build and machine run: version, active ISA level, supported levels, threads."""
    return {
        "version": __version__,
        "isa": _core.active_isa(),
        "isas_supported": _core.supported_isas(),
        "isas_compiled": _core.compiled_isas(),
        "cpu_features": _core.cpu_features(),
        "amx": _core.amx_status(),
        "threads": default_threads(),
    }


@contextlib.contextmanager
def using_isa(level: str):
    """Runs the enclosed code on the kernels of ISA level `level` (one of _core.supported_isas() or
    _core.emulated_isas()), then goes back to the level that was active. The level is process-wide
    (every model and thread), so this is for comparing levels side by side, as bench/isa_*.py and
    the tests do, not for concurrent use. An unknown or unsupported level raises InvalidArgumentError
    and changes nothing."""
    before = _core.active_isa()
    _core.select_isa(level)
    try:
        yield level
    finally:
        _core.select_isa(before)


__all__ = ["LLM", "AsyncEngine", "StreamDelta", "SamplingParams", "GenerationOutput", "Logprob", "LLMasOSError", "ModelFormatError",
           "ModelNotFoundError", "InvalidArgumentError", "ChatTemplateError", "runtime_info", "using_isa"]
