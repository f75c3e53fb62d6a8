"""The bench scripts that take the model to other machines, run for real: bench/gguf_layers.py (a copy
with the first N layers), bench/isa_model_check.py (a model's bits across ISA levels) and
bench/isa_kernels.py (products per level). Timings are printed, never asserted."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from gguf import GGUFReader

from llmasos import LLM, _core

BENCH = Path(__file__).resolve().parent.parent / "bench"


def run(script, *args, timeout=300):
    return subprocess.run([sys.executable, str(BENCH / script), *map(str, args)], capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def two_layers(smollm2_gguf, tmp_path_factory):
    out = tmp_path_factory.mktemp("layers") / "two.gguf"
    r = run("gguf_layers.py", smollm2_gguf, out, 2)
    assert r.returncode == 0, r.stderr
    return out


def test_gguf_layers_keeps_the_first_layers_byte_for_byte(smollm2_gguf, two_layers):
    src, dst = GGUFReader(smollm2_gguf), GGUFReader(two_layers)
    assert dst.fields["llama.block_count"].contents() == 2
    for name, f in src.fields.items():
        if name.startswith("GGUF.") or name == "llama.block_count":
            continue
        assert dst.fields[name].contents() == f.contents(), name
    kept = {t.name: t for t in src.tensors
            if not t.name.startswith("blk.") or t.name.split(".")[1] in ("0", "1")}
    assert [t.name for t in dst.tensors] == list(kept)
    for t in dst.tensors:
        s = kept[t.name]
        assert t.tensor_type == s.tensor_type and list(t.shape) == list(s.shape)
        assert np.array_equal(np.asarray(t.data).view(np.uint8), np.asarray(s.data).view(np.uint8)), t.name
    with LLM.from_pretrained(str(two_layers), n_ctx=64, threads=2) as llm:
        logits = llm.logits(llm.tokenize("The world is"))
    assert logits.shape[1] == 49152 and np.isfinite(logits).all()


def test_gguf_layers_refuses_a_count_the_file_does_not_have(smollm2_gguf, tmp_path):
    for n in (0, 31):
        r = run("gguf_layers.py", smollm2_gguf, tmp_path / "x.gguf", n)
        assert r.returncode != 0 and "1..30" in r.stderr


def test_isa_model_check_finds_every_level_identical(two_layers):
    levels = [lv for lv in _core.supported_isas() + _core.emulated_isas() if lv != "generic"]
    if not levels:
        pytest.skip("only the generic level here (too slow for a 300-token prompt)")
    r = run("isa_model_check.py", two_layers, "--threads", 2, "--levels", *levels)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("logits identical") == len(levels)
    assert "DIFFER" not in r.stdout


def test_isa_kernels_prints_a_row_per_case():
    r = run("isa_kernels.py", "--types", "Q4_0", "Q4_K", "--tokens", 1, 5, "--shapes", "qkv", "--reps", 1)
    assert r.returncode == 0, r.stderr
    rows = [line for line in r.stdout.splitlines() if line.startswith(("Q4_0", "Q4_K"))]
    assert len(rows) == 4
    assert "[960x768]" in rows[-1]  # K-quant columns rounded up to 256


def test_mixed_weight_types_share_the_products_scratch(smollm2_gguf, tmp_path):
    """Q/K/V in Q8_0 (their precise product takes 16-bit activations) beside Q4_1 / Q5_1 products
    (Q8_1 activations) in one model: the products share one scratch, which each must size for
    itself (a Q8_1 product after the 16-bit one once wrote past a side array). The packed model
    agrees with the same file used in place (other kernels, same maths)."""
    import re
    from gguf import GGMLQuantizationType as Q
    sys.path.insert(0, str(BENCH))
    from gguf_layers import truncate
    for other in (Q.Q4_1, Q.Q5_1):
        def retype(name):
            if re.search(r"attn_[qkv]\.weight", name):
                return Q.Q8_0
            return other if re.search(r"(ffn_(gate|up|down)|attn_output)\.weight", name) else None

        path = tmp_path / f"mix-{other.name}.gguf"
        truncate(smollm2_gguf, str(path), 2, retype=retype)
        ids = list(range(1000, 1040))
        with LLM.from_pretrained(str(path), n_ctx=64, threads=2) as llm:
            packed = llm.logits(ids)
        with LLM.from_pretrained(str(path), n_ctx=64, threads=2, repack_weights=False) as llm:
            in_place = llm.logits(ids)
        assert np.isfinite(packed).all()
        np.testing.assert_allclose(packed, in_place, atol=0.05 * np.abs(in_place).max())


def test_avx2_ceiling_probe_builds_and_reports(tmp_path):
    """bench/avx2_ceiling.cc compiles with the machine's C++ compiler and prints a positive ceiling
    for each step (the figures themselves are not asserted)."""
    import re
    import shutil
    cxx = shutil.which("g++") or shutil.which("clang++")
    if cxx is None or "avx2" not in _core.supported_isas():
        pytest.skip("needs g++ or clang++ and an AVX2 CPU")
    exe = tmp_path / "avx2_ceiling"
    b = subprocess.run([cxx, "-O2", "-mavx2", "-o", str(exe), str(BENCH / "avx2_ceiling.cc")],
                       capture_output=True, text=True, timeout=120)
    assert b.returncode == 0, b.stderr
    r = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    found = re.findall(r"^(q8|q4|pair) .*ceiling (\d+) GMAC/s per core$", r.stdout, re.M)
    assert [name for name, _ in found] == ["q8", "q4", "pair"], r.stdout
    assert all(int(v) > 0 for _, v in found), r.stdout
