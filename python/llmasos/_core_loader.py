"""Imports the compiled core. LLMASOS_DEV_CORE=<build dir> loads `_core` from a development
build directory instead of the installed package (for iterating on C++ without reinstalling)."""
import importlib.machinery
import importlib.util
import os
import sys

_dev = os.environ.get("LLMASOS_DEV_CORE")
if _dev:
    _path = next((os.path.join(_dev, f) for f in sorted(os.listdir(_dev))
                  if f.startswith("_core") and f.endswith(".so")), None)
    if _path is None:
        raise ImportError(f"LLMASOS_DEV_CORE={_dev}: no _core*.so there")
    _spec = importlib.util.spec_from_file_location("llmasos._core", _path)
    _core = importlib.util.module_from_spec(_spec)
    sys.modules["llmasos._core"] = _core
    _spec.loader.exec_module(_core)
else:
    from . import _core  # noqa: F401
