"""Architecture parity: random tiny llama and qwen2 models in transformers vs the same weights
converted to GGUF and run by llmasos (F32 and F16 weights; logits at every position)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("gguf")

from hf_tiny_models import make_hf_model, write_gguf  # noqa: E402
from llmasos import LLM, SamplingParams  # noqa: E402


@pytest.mark.parametrize("arch,tie,dtype,tol", [
    ("llama", False, np.float32, 2e-4),
    ("llama", True, np.float32, 2e-4),
    ("qwen2", False, np.float32, 2e-4),
    ("llama", False, np.float16, 2e-2),
])
def test_logits_match_transformers(tmp_path, arch, tie, dtype, tol, each_isa):
    model = make_hf_model(arch, seed=1, tie=tie)
    path = str(tmp_path / f"{arch}.gguf")
    write_gguf(model, arch, path, dtype=dtype)
    rng = np.random.default_rng(0)
    ids = rng.integers(3, model.config.vocab_size, size=40).tolist()
    with torch.no_grad():
        ref = model(torch.tensor([ids])).logits[0].numpy()
    with LLM.from_pretrained(path, n_ctx=128, threads=2) as llm:
        ours = llm.logits(ids)
        scale = np.abs(ref).max()
        np.testing.assert_allclose(ours, ref, atol=tol * scale * 10, rtol=0)
        assert (ours.argmax(-1) == ref.argmax(-1)).mean() >= 0.95
        # Incremental decoding through the KV cache gives the same next tokens as HF greedy.
        out = llm.generate(ids[:10], SamplingParams(max_tokens=12, ignore_eos=True))[0].token_ids
    with torch.no_grad():
        hf = model.generate(torch.tensor([ids[:10]]), max_new_tokens=12, min_new_tokens=12,
                            do_sample=False, pad_token_id=2)[0, 10:].tolist()
    if dtype == np.float32:
        assert out == hf
