"""`llmasos quantize`: re-quantized files are valid GGUF that the gguf package reads, keep every
tensor's values within the target type's error, and still run."""
import os
import subprocess
import sys

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")

from llmasos import LLM, _core  # noqa: E402

# Relative RMS error each type may add to a weight matrix (the source is Q4_1, itself lossy).
TOLERANCE = {"Q8_0": 0.01, "Q6_K": 0.03, "Q5_K": 0.05, "Q5_0": 0.06, "Q5_1": 0.05, "Q4_K": 0.1,
             "Q4_0": 0.12, "Q4_1": 1e-6, "F16": 1e-3, "BF16": 8e-3, "F32": 0.0}


def relative_rms(a, b):
    return float(np.sqrt(np.mean((a - b) ** 2)) / (np.sqrt(np.mean(b ** 2)) + 1e-12))


def metadata(reader):
    return {k: f.contents() for k, f in reader.fields.items() if not k.startswith("GGUF.")}


@pytest.fixture(scope="module")
def source(smollm2_gguf):
    """The source file as the gguf package reads it, once for every target type (a read takes
    seconds: the reader parses the 49k-entry vocabulary value by value)."""
    reader = gguf.GGUFReader(smollm2_gguf)
    return reader, metadata(reader)


@pytest.mark.parametrize("qtype", ["Q8_0", "Q4_K", "Q6_K", "Q5_0", "F16"])
def test_quantize_roundtrip(smollm2_gguf, source, tmp_path, qtype):
    out = tmp_path / f"model-{qtype}.gguf"
    r = subprocess.run([sys.executable, "-m", "llmasos", "quantize", smollm2_gguf, str(out), qtype],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    src, src_fields = source
    dst = gguf.GGUFReader(str(out))
    assert [t.name for t in src.tensors] == [t.name for t in dst.tensors]
    dst_fields = metadata(dst)
    assert set(src_fields) == set(dst_fields)
    for k in src_fields:
        if k != "general.file_type":
            assert src_fields[k] == dst_fields[k], k
    for ts, td in zip(src.tensors, dst.tensors):
        assert list(ts.shape) == list(td.shape)
        a = gguf.quants.dequantize(ts.data, ts.tensor_type).astype(np.float32)
        b = gguf.quants.dequantize(td.data, td.tensor_type).astype(np.float32)
        if len(ts.shape) >= 2 and ts.shape[1] > 1:
            # Rows that the target's blocks do not tile get llama.cpp's stand-in (Q4_K -> Q5_0,
            # Q5_K -> Q5_1, Q6_K -> Q8_0), then Q8_0, then F16.
            stand_in = {"Q4_K": "Q5_0", "Q5_K": "Q5_1"}.get(qtype, "Q8_0")
            assert td.tensor_type.name in (qtype, stand_in, "Q8_0", "F16")
            assert relative_rms(b, a) <= TOLERANCE[td.tensor_type.name], ts.name
        else:
            np.testing.assert_array_equal(a, b)
    with LLM.from_pretrained(str(out), n_ctx=128) as llm:
        text = llm.generate_text("The capital of France is", max_tokens=8)
        assert len(text.strip()) > 0


def test_quantize_bad_arguments(smollm2_gguf, tmp_path):
    with pytest.raises(_core.InvalidArgumentError, match="valid: "):
        _core.quantize_gguf(smollm2_gguf, str(tmp_path / "x.gguf"), "Q3_X")
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\xff" * 20)
    with pytest.raises(_core.ModelFormatError):
        _core.quantize_gguf(str(bad), str(tmp_path / "y.gguf"), "Q8_0")
    assert not (tmp_path / "y.gguf").exists() and not (tmp_path / "y.gguf.part").exists()
    r = subprocess.run([sys.executable, "-m", "llmasos", "quantize", smollm2_gguf, smollm2_gguf, "Q8_0"],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "different file" in r.stderr
    assert os.path.getsize(smollm2_gguf) > 0
