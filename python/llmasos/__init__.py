"""llmasos: run and serve large language models on your own hardware."""
from ._core_loader import _core

__version__ = _core.__version__
LLMasOSError = _core.LLMasOSError
ModelFormatError = _core.ModelFormatError
InvalidArgumentError = _core.InvalidArgumentError
