"""`python -m llmasos ...` is the same as the `llmasos` command; `python -m llmasos --cmake-dir`
prints the folder to pass as `llmasos_DIR` to CMake."""
import sys

if sys.argv[1:] == ["--cmake-dir"]:
    from ._cmake import main as _cmake_main

    sys.exit(_cmake_main())

from .cli import main

sys.exit(main())
