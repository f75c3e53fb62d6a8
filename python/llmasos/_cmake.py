"""Where the CMake package of the C/C++ library is: `python -m llmasos --cmake-dir` prints it, to
pass as `llmasos_DIR` (find_package(llmasos) then gives llmasos::llmasos)."""
import os
from typing import Optional


def cmake_dir() -> Optional[str]:
    """The folder holding llmasosConfig.cmake: the wheel's llmasos/lib/cmake/llmasos, else (in the
    development loop) the LLMASOS_DEV_CORE build tree, which is a package too. None if neither."""
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib", "cmake", "llmasos")
    candidates = [here]
    dev = os.environ.get("LLMASOS_DEV_CORE")
    if dev:
        candidates.append(os.path.abspath(dev))
    for d in candidates:
        if os.path.isfile(os.path.join(d, "llmasosConfig.cmake")):
            return d
    return None


def main() -> int:
    d = cmake_dir()
    if d is None:
        import sys
        print("llmasos: error: this installation has no C/C++ library (llmasosConfig.cmake not found); "
              "install llmasos with pip, or set LLMASOS_DEV_CORE to a development build",
              file=sys.stderr)
        return 1
    print(d)
    return 0
