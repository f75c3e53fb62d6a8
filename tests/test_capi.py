"""The C and C++ APIs as an application sees them: build examples/c, examples/cpp and the C error-path
program against the installed CMake package with plain CMake, and compare their greedy text with
LLM.generate_text. The package comes from `python -m llmasos --cmake-dir` (the wheel, or the
LLMASOS_DEV_CORE build tree, installed into a temporary prefix), else from a build of the source tree."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from llmasos import LLM, SamplingParams

ROOT = Path(__file__).resolve().parent.parent
PROMPTS = ["The world is", "Écrivez un poème sur la mer:", "1, 2, 3, 4,"]
MAX_TOKENS = 24


def _run(cmd, **kw):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r


def _cmake_generator_args():
    return ["-G", "Ninja"] if shutil.which("ninja") else []


@pytest.fixture(scope="session")
def llmasos_dir(tmp_path_factory):
    """A folder with llmasosConfig.cmake of an *installed* llmasos (session-wide, built once)."""
    if not shutil.which("cmake") or not (shutil.which("c++") or shutil.which("g++")):
        pytest.skip("needs cmake and a C/C++ compiler")
    tmp = tmp_path_factory.mktemp("llmasos_pkg")
    r = subprocess.run([sys.executable, "-m", "llmasos", "--cmake-dir"], capture_output=True, text=True)
    if r.returncode == 0:
        d = Path(r.stdout.strip())
        if not (d / "cmake_install.cmake").is_file():
            return d  # an installed package (the wheel's llmasos/lib/cmake/llmasos)
        # A development build tree: install it, so the test sees what users get.
        _run(["cmake", "--install", d, "--prefix", tmp / "prefix"])
    else:
        # No library next to this llmasos: build the source tree's library (no Python module).
        build = tmp / "build"
        _run(["cmake", "-S", ROOT, "-B", build, *_cmake_generator_args(), "-DCMAKE_BUILD_TYPE=Release",
              "-DLLMASOS_BUILD_PYTHON=OFF", "-DLLMASOS_CUDA=OFF"])
        _run(["cmake", "--build", build, "--target", "llmasos", "-j2"], timeout=1200)
        _run(["cmake", "--install", build, "--prefix", tmp / "prefix"])
    found = sorted((tmp / "prefix").glob("lib*/cmake/llmasos/llmasosConfig.cmake"))
    assert found, "cmake --install placed no llmasosConfig.cmake"
    return found[0].parent


def _build_project(src: Path, llmasos_dir: Path, build: Path) -> Path:
    _run(["cmake", "-S", src, "-B", build, *_cmake_generator_args(), f"-Dllmasos_DIR={llmasos_dir}"])
    _run(["cmake", "--build", build])
    return build


@pytest.fixture(scope="session")
def c_example(llmasos_dir, tmp_path_factory):
    return _build_project(ROOT / "examples" / "c", llmasos_dir, tmp_path_factory.mktemp("ex_c")) / "generate"


@pytest.fixture(scope="session")
def cpp_example(llmasos_dir, tmp_path_factory):
    return _build_project(ROOT / "examples" / "cpp", llmasos_dir, tmp_path_factory.mktemp("ex_cpp")) / "generate"


@pytest.fixture(scope="session")
def python_texts(smollm2_gguf):
    with LLM.from_pretrained(smollm2_gguf) as llm:
        return {p: llm.generate_text(p, max_tokens=MAX_TOKENS) for p in PROMPTS}


@pytest.mark.parametrize("lang", ["c", "cpp"])
@pytest.mark.parametrize("prompt", PROMPTS)
def test_example_matches_python(lang, prompt, request, smollm2_gguf, python_texts):
    exe = request.getfixturevalue(f"{lang}_example")
    r = _run([exe, smollm2_gguf, prompt, str(MAX_TOKENS)], timeout=300)
    assert r.stdout.endswith("\n")
    assert r.stdout[:-1] == python_texts[prompt]
    assert f"[{MAX_TOKENS} tokens" in r.stderr or "finish: stop" in r.stderr


@pytest.mark.parametrize("lang", ["c", "cpp"])
def test_example_json_mode_matches_python(lang, request, smollm2_gguf):
    """--json sets the API's json_object: the same object as LLM.generate with json_object."""
    prompt = "A JSON object describing a cat:"
    with LLM.from_pretrained(smollm2_gguf) as llm:
        ref = llm.generate(prompt, SamplingParams(max_tokens=80, json_object=True))[0]
    assert ref.finish_reason == "stop" and isinstance(json.loads(ref.text), dict)
    r = _run([request.getfixturevalue(f"{lang}_example"), smollm2_gguf, prompt, "80", "--json"], timeout=300)
    assert r.stdout[:-1] == ref.text and "finish: stop" in r.stderr


@pytest.mark.parametrize("lang", ["c", "cpp"])
def test_example_stop_strings_match_python(lang, request, smollm2_gguf, python_texts):
    """--stop sets the API's stop strings: the text ends before the first one to appear, found
    across token boundaries (", 8" is two tokens), as LLM.generate's stop ends it; finish stop.
    A stop string that never appears changes nothing."""
    prompt = "1, 2, 3, 4,"
    full = python_texts[prompt]
    with LLM.from_pretrained(smollm2_gguf) as llm:
        ref = llm.generate(prompt, SamplingParams(max_tokens=MAX_TOKENS, stop=["zzz", ", 8", " 9"]))[0]
    assert ref.finish_reason == "stop" and ref.text == full[:full.index(", 8")]
    exe = request.getfixturevalue(f"{lang}_example")
    r = _run([exe, smollm2_gguf, prompt, MAX_TOKENS, "--stop", "zzz", "--stop", ", 8", "--stop", " 9"], timeout=300)
    assert r.stdout[:-1] == ref.text and "finish: stop" in r.stderr
    r = _run([exe, smollm2_gguf, prompt, MAX_TOKENS, "--stop", "zzz"], timeout=300)
    assert r.stdout[:-1] == full


@pytest.mark.parametrize("lang", ["c", "cpp"])
def test_example_grammar_matches_python(lang, request, smollm2_gguf, tmp_path):
    """--grammar FILE holds the output to a GBNF grammar (llmasos_grammar_parse and
    llmasos_generate_with_grammar): the same text as LLM.generate with that grammar; a bad grammar
    is a message saying where."""
    grammar = 'root ::= ("- " item "\\n"){2}\nitem ::= [A-Z] [a-z ]{2,20}\n'
    path = tmp_path / "list.gbnf"
    path.write_text(grammar)
    prompt = "Two animals:\n"
    with LLM.from_pretrained(smollm2_gguf) as llm:
        ref = llm.generate(prompt, SamplingParams(max_tokens=40, grammar=grammar))[0]
    assert ref.finish_reason == "stop" and ref.text.count("\n") == 2
    exe = request.getfixturevalue(f"{lang}_example")
    r = _run([exe, smollm2_gguf, prompt, "40", "--grammar", path], timeout=300)
    assert r.stdout[:-1] == ref.text and "finish: stop" in r.stderr
    path.write_text("root ::= item\n")
    r = subprocess.run([exe, smollm2_gguf, prompt, "40", "--grammar", path], capture_output=True, text=True)
    assert r.returncode == 1 and "line 1, column 10: rule 'item' is used but not defined" in r.stderr


@pytest.mark.parametrize("lang", ["c", "cpp"])
def test_embed_example_matches_python(lang, request, smollm2_gguf):
    """examples/*/embed prints llmasos_embed's floats: bit for bit LLM.embed's."""
    import numpy as np
    texts = ["The cat sat on the mat.", "Écrivez un poème sur la mer:"]
    exe = request.getfixturevalue(f"{lang}_example").parent / "embed"
    r = _run([exe, smollm2_gguf, *texts], timeout=300)
    got = np.array([[float(x) for x in line.split()] for line in r.stdout.splitlines()], dtype=np.float32)
    with LLM.from_pretrained(smollm2_gguf) as llm:
        want = llm.embed(texts)
    assert got.shape == want.shape and got.tobytes() == want.tobytes()
    r = subprocess.run([exe], capture_output=True, text=True)
    assert r.returncode == 2 and "usage:" in r.stderr


@pytest.mark.parametrize("lang", ["c", "cpp"])
def test_example_errors_are_messages(lang, request, tmp_path, smollm2_gguf):
    exe = request.getfixturevalue(f"{lang}_example")
    r = subprocess.run([exe], capture_output=True, text=True)
    assert r.returncode == 2 and "usage:" in r.stderr
    r = subprocess.run([exe, tmp_path / "missing.gguf", "hi"], capture_output=True, text=True)
    assert r.returncode == 1 and "cannot open" in r.stderr
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\xff" * 60)
    r = subprocess.run([exe, bad, "hi"], capture_output=True, text=True)
    assert r.returncode == 1 and "GGUF" in r.stderr


def test_c_api_error_paths(llmasos_dir, tmp_path, smollm2_gguf):
    exe = _build_project(ROOT / "tests" / "capi", llmasos_dir, tmp_path / "build") / "error_paths"
    truncated = tmp_path / "truncated.gguf"
    with open(smollm2_gguf, "rb") as f:
        truncated.write_bytes(f.read(100_000))
    r = subprocess.run([exe, smollm2_gguf, truncated], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr  # a signal would be negative
    assert "failures 0" in r.stdout
    assert "ok load_corrupt_file LLMASOS_ERROR_MODEL_FORMAT" in r.stdout


def test_library_exports_only_the_c_api(llmasos_dir):
    if not shutil.which("nm"):
        pytest.skip("needs nm")
    libs = sorted(llmasos_dir.parent.parent.glob("libllmasos.so*"))
    assert libs, f"no libllmasos.so near {llmasos_dir}"
    out = _run(["nm", "-D", "--defined-only", libs[0]]).stdout
    names = [line.split()[-1] for line in out.splitlines() if line.strip()]
    assert "llmasos_generate" in names
    assert [n for n in names if not n.startswith("llmasos_")] == []


def test_cmake_dir_flag():
    r = subprocess.run([sys.executable, "-m", "llmasos", "--cmake-dir"], capture_output=True, text=True)
    if r.returncode == 0:
        assert (Path(r.stdout.strip()) / "llmasosConfig.cmake").is_file()
    else:
        assert r.returncode == 1 and "llmasosConfig.cmake" in r.stderr
