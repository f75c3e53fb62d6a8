"""Smoke test of an installed llmasos (cibuildwheel's test-command; needs numpy only, no download):
the compiled and supported ISA levels, a tiny generated llama model decoded greedily under every
supported level (the same text each time), and the C/C++ package inside the wheel.

    python tests/wheel_smoke.py        # exit code 0 and one line per check
"""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # gguf_factory

import llmasos  # noqa: E402
from gguf_factory import make_tiny_llama  # noqa: E402
from llmasos import LLM, _core  # noqa: E402


def main() -> int:
    info = llmasos.runtime_info()
    print("llmasos", info["version"], "compiled:", info["isas_compiled"], "supported:", info["isas_supported"],
          "active:", info["isa"])
    assert info["isas_compiled"][0] == "generic" and "generic" in info["isas_supported"]
    assert set(info["isas_supported"]) <= set(info["isas_compiled"])
    assert info["isa"] == info["isas_supported"][-1]

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "tiny.gguf")
        make_tiny_llama(path, wtype="q8_0")
        texts = {}
        for level in _core.supported_isas():
            _core.select_isa(level)
            with LLM.from_pretrained(path, threads=2) as llm:
                texts[level] = llm.generate_text("hello world", max_tokens=12)
            print(f"{level}: {texts[level]!r}")
        assert len(set(texts.values())) == 1, f"levels disagree: {texts}"

    r = subprocess.run([sys.executable, "-m", "llmasos", "--cmake-dir"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    cmake_dir = r.stdout.strip()
    assert os.path.isfile(os.path.join(cmake_dir, "llmasosConfig.cmake")), cmake_dir
    package = os.path.dirname(os.path.abspath(llmasos.__file__))
    if os.path.abspath(cmake_dir).startswith(package):  # an installed wheel, not a development tree
        include = os.path.join(package, "include", "llmasos", "llmasos.h")
        assert os.path.isfile(include), include
    print("cmake package:", cmake_dir)
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
