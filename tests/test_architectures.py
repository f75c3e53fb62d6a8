"""Architecture parity: random tiny llama, qwen2, qwen3, gemma, gemma2 and gemma3 models in transformers vs the same weights
converted to GGUF and run by llmasos (F32 and F16 weights; quantized weights, which llmasos
repacks into x8 blocks, against transformers holding their dequantized values; logits at every
position)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("gguf")

from hf_tiny_models import make_hf_model, unpermute_from_gguf, write_gguf  # noqa: E402
from llmasos import LLM, ModelFormatError, SamplingParams  # noqa: E402


@pytest.mark.parametrize("arch,tie,dtype,tol", [
    ("llama", False, np.float32, 2e-4),
    ("llama", True, np.float32, 2e-4),
    ("qwen2", False, np.float32, 2e-4),
    ("qwen3", True, np.float32, 2e-4),
    ("gemma", True, np.float32, 2e-4),
    ("gemma2", True, np.float32, 2e-4),  # soft caps; sliding window of 8 under a 40-token prompt
    ("gemma3", True, np.float32, 2e-4),  # sliding window of 8 under a 40-token prompt
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


HF_NAMES = {"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
            "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
            "ffn_down": "mlp.down_proj"}


@pytest.mark.parametrize("main,k_type,tie", [
    ("Q4_0", "Q4_0", True),    # Q|K|V and gate|up stacked; tied head looked up from its packing
    ("Q5_1", "Q8_0", False),   # K in another type: Q, K, V packed one by one
    ("Q8_0", "Q5_0", False),
    ("Q4_1", "Q4_1", False),
])
def test_quantized_weights_match_transformers(tmp_path, main, k_type, tie, each_isa):
    model = make_hf_model("llama", seed=2, tie=tie)
    path = str(tmp_path / "q.gguf")
    deq = write_gguf(model, "llama", path, quant=lambda n: k_type if "attn_k" in n else main)
    cfg = model.config
    with torch.no_grad():  # transformers gets the very values the quantized blocks hold
        sd = model.state_dict()
        sd["model.embed_tokens.weight"].copy_(torch.from_numpy(deq["token_embd.weight"]))
        if not tie:
            sd["lm_head.weight"].copy_(torch.from_numpy(deq["output.weight"]))
        for i in range(cfg.num_hidden_layers):
            for g, h in HF_NAMES.items():
                w = deq[f"blk.{i}.{g}.weight"]
                if g in ("attn_q", "attn_k"):
                    w = unpermute_from_gguf(w, cfg.num_attention_heads if g == "attn_q" else cfg.num_key_value_heads)
                sd[f"model.layers.{i}.{h}.weight"].copy_(torch.from_numpy(np.ascontiguousarray(w)))
    ids = np.random.default_rng(1).integers(3, cfg.vocab_size, size=40).tolist()
    with torch.no_grad():
        ref = model(torch.tensor([ids])).logits[0].numpy()
    with LLM.from_pretrained(path, n_ctx=128, threads=2) as llm:
        ours = llm.logits(ids)
        # Only the 8-bit activations differ from the reference (~16-bit for Q/K/V).
        scale = np.abs(ref).max()
        np.testing.assert_allclose(ours, ref, atol=0.03 * scale, rtol=0)
        assert (ours.argmax(-1) == ref.argmax(-1)).mean() >= 0.9
        # Decoding one token at a time gives the bits of the whole-prompt pass.
        out = llm.generate(ids[:10], SamplingParams(max_tokens=8, ignore_eos=True))[0].token_ids
        again = llm.logits(ids[:10] + out[:-1])
        assert again[9:].argmax(-1).tolist() == out
    # The weights used in place from the mapping (the row kernels, another float order) agree as
    # closely as 8-bit activations allow (a last-bit difference can move a quantized activation).
    with LLM.from_pretrained(path, n_ctx=128, threads=2, repack_weights=False) as llm:
        inplace = llm.logits(ids)
        np.testing.assert_allclose(inplace, ref, atol=0.03 * scale, rtol=0)
        assert (inplace.argmax(-1) == ours.argmax(-1)).mean() >= 0.95


@pytest.mark.parametrize("arch", ["gemma2", "gemma3"])
def test_gemma_exact_with_float_cache_and_batched_like_alone(tmp_path, arch):
    """With an F32 KV cache the tiny Gemma 2 / 3 are float32-exact against transformers in float64
    (sliding windows, the global layers, soft caps, q/k norms, GELU); batched sequences past the
    window get the tokens each gets alone."""
    model = make_hf_model(arch, seed=3, tie=True)
    path = str(tmp_path / "g.gguf")
    write_gguf(model, arch, path)
    ids = np.random.default_rng(5).integers(3, model.config.vocab_size, size=50).tolist()
    with torch.no_grad():
        ref = model.double()(torch.tensor([ids])).logits[0].numpy()
    with LLM.from_pretrained(path, n_ctx=128, threads=2, kv_cache_type="f32") as llm:
        np.testing.assert_allclose(llm.logits(ids), ref, atol=2e-5 * np.abs(ref).max(), rtol=0)
    prompts = [ids[:3], ids[:21], ids[5:42], ids[:9]]
    params = SamplingParams(max_tokens=14, ignore_eos=True)
    with LLM.from_pretrained(path, n_ctx=128, threads=2) as llm:
        batched = [o.token_ids for o in llm.generate(prompts, params)]
        alone = [llm.generate([p], params)[0].token_ids for p in prompts]
        assert batched == alone
        # Teacher-forced through one pass, the same tokens come out as decoded one at a time.
        for p, out in zip(prompts, batched):
            assert llm.logits(p + out[:-1])[len(p) - 1:].argmax(-1).tolist() == out


@pytest.mark.parametrize("arch", ["llama", "gemma3"])
def test_embeddings_pool_transformers_hidden_states(tmp_path, arch):
    """LLM.embed pools the final-normed hidden states transformers' base model returns
    (last_hidden_state): mean, last and first token, L2-normalized by default."""
    model = make_hf_model(arch, seed=4, tie=True)
    path = str(tmp_path / "e.gguf")
    write_gguf(model, arch, path)
    ids = np.random.default_rng(7).integers(3, model.config.vocab_size, size=30).tolist()
    with torch.no_grad():
        ref = model.model(torch.tensor([ids])).last_hidden_state[0].double().numpy()
    tol = dict(rtol=0, atol=1e-5 * np.abs(ref).max())
    with LLM.from_pretrained(path, n_ctx=128, threads=2, kv_cache_type="f32") as llm:
        np.testing.assert_allclose(llm.embed(ids, normalize=False), ref.mean(0), **tol)
        np.testing.assert_allclose(llm.embed(ids, pooling="last", normalize=False), ref[-1], **tol)
        np.testing.assert_allclose(llm.embed(ids, pooling="cls", normalize=False), ref[0], **tol)
        unit = llm.embed(ids)
        np.testing.assert_allclose(unit, ref.mean(0) / np.linalg.norm(ref.mean(0)), rtol=0, atol=1e-5)
        many = llm.embed([ids, ids[:7]])
        assert many.shape == (2, model.config.hidden_size) and many.dtype == np.float32
        assert many[0].tobytes() == unit.tobytes()
        with pytest.raises(ValueError):
            llm.embed(ids, pooling="max")
        with pytest.raises(TypeError):
            llm.embed([])


def _rewrite(src, dst, arch, set_=None, remove=()):
    """A copy of the GGUF at src with metadata keys set ({key: (GGUFValueType, value)}) or removed."""
    import gguf
    from gguf.scripts.gguf_new_metadata import MetadataDetails, copy_with_new_metadata
    reader = gguf.GGUFReader(src)
    writer = gguf.GGUFWriter(dst, arch)
    new = {k: MetadataDetails(t, v) for k, (t, v) in (set_ or {}).items()}
    copy_with_new_metadata(reader, writer, new, list(remove))
    return dst


@pytest.mark.parametrize("arch,set_,remove,match", [
    ("gemma3", {"gemma3.attention.sliding_window": ("UINT32", 0)}, (), "sliding_window"),
    ("gemma3", {}, ("gemma3.attention.sliding_window",), "sliding_window"),
    ("gemma3", {"gemma3.attention.key_length": ("UINT32", 5000)}, (), "key_length"),
    ("gemma3", {"gemma3.attention.value_length": ("UINT32", 16)}, (), "value_length"),
    ("gemma2", {"gemma2.attn_logit_softcapping": ("FLOAT32", 1e-30)}, (), "softcapping"),
    ("gemma2", {"gemma2.final_logit_softcapping": ("FLOAT32", -3.0)}, (), "softcapping"),
    ("qwen3", {"qwen3.rope.scaling.type": ("STRING", "linear"),
               "qwen3.rope.scaling.factor": ("FLOAT32", 0.5)}, (), "scaling.factor"),
])
def test_bad_metadata_is_a_clear_error(tmp_path, arch, set_, remove, match):
    import gguf
    model = make_hf_model(arch, seed=0, tie=True)
    src = str(tmp_path / "ok.gguf")
    write_gguf(model, arch, src)
    typed = {k: (getattr(gguf.GGUFValueType, t), v) for k, (t, v) in set_.items()}
    bad = _rewrite(src, str(tmp_path / "bad.gguf"), arch, typed, remove)
    with pytest.raises(ModelFormatError, match=match):
        LLM.from_pretrained(bad, n_ctx=64)


def test_gemma2_file_without_the_newer_keys_gets_llama_cpp_defaults(tmp_path):
    """Early Gemma 2 GGUFs lack the window and the soft caps: they load with 4096, 50 and 30 (so
    with the caps removed, a model whose caps are 50 / 30 still matches transformers)."""
    model = make_hf_model("gemma2", seed=5, tie=True)
    model.config.attn_logit_softcapping, model.config.final_logit_softcapping = 50.0, 30.0
    for layer in model.model.layers:
        layer.self_attn.attn_logit_softcapping = 50.0
    src = str(tmp_path / "ok.gguf")
    write_gguf(model, "gemma2", src)
    old = _rewrite(src, str(tmp_path / "old.gguf"), "gemma2", remove=(
        "gemma2.attn_logit_softcapping", "gemma2.final_logit_softcapping"))
    ids = np.random.default_rng(2).integers(3, model.config.vocab_size, size=24).tolist()
    with torch.no_grad():
        ref = model.double()(torch.tensor([ids])).logits[0].numpy()
    with LLM.from_pretrained(old, n_ctx=64, kv_cache_type="f32") as llm:
        np.testing.assert_allclose(llm.logits(ids), ref, atol=2e-5 * np.abs(ref).max(), rtol=0)
