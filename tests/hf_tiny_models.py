"""Random tiny Hugging Face decoder models (llama, qwen2, qwen3, gemma, gemma2, gemma3) written to GGUF the way llama.cpp's
converter writes them (Q/K rows permuted for llama's interleaved RoPE; Gemma's norm weights stored
as 1 + w), for architecture parity tests: the same random weights run in transformers and in
llmasos."""
from __future__ import annotations

import numpy as np

from gguf_factory import bytes_to_unicode


def tiny_bpe_vocab(n_vocab: int):
    """Control tokens, the 256 byte tokens, then merged tokens of common letter pairs."""
    controls = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    byte_tokens = list(bytes_to_unicode().values())
    tokens = controls + byte_tokens
    merges = []
    letters = "etaoinshrdlu"
    space = bytes_to_unicode()[ord(" ")]
    pairs = [(space, c) for c in letters] + [(a, b) for a in letters for b in letters]
    for a, b in pairs:
        if len(tokens) >= n_vocab:
            break
        tokens.append(a + b)
        merges.append(f"{a} {b}")
    types = [3] * len(controls) + [1] * (len(tokens) - len(controls))
    return tokens, types, merges


def permute_for_gguf(w: np.ndarray, n_head: int) -> np.ndarray:
    """HF rotate-half layout -> llama.cpp interleaved layout (as convert_hf_to_gguf.py does)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def make_hf_model(arch: str, seed: int = 0, tie: bool = False):
    import torch
    import transformers
    torch.manual_seed(seed)
    common = dict(vocab_size=320, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                  rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=tie)
    if arch == "llama":
        cfg = transformers.LlamaConfig(**common)
        model = transformers.LlamaForCausalLM(cfg)
    elif arch == "qwen2":
        cfg = transformers.Qwen2Config(**common)
        model = transformers.Qwen2ForCausalLM(cfg)
    elif arch == "qwen3":  # per-head q/k norms; heads 32 wide over a 64-wide residual
        cfg = transformers.Qwen3Config(**common, head_dim=32)
        model = transformers.Qwen3ForCausalLM(cfg)
    elif arch == "gemma":
        del common["rope_theta"]
        cfg = transformers.GemmaConfig(**common, head_dim=32)
        model = transformers.GemmaForCausalLM(cfg)
    elif arch == "gemma2":
        # 4 layers (sliding-window layers 0 and 2, window 8); soft caps small enough that tanh bends
        # the random model's scores and logits.
        del common["rope_theta"]
        cfg = transformers.Gemma2Config(**{**common, "num_hidden_layers": 4, "rms_norm_eps": 1e-6},
                                        head_dim=32, query_pre_attn_scalar=32, sliding_window=8,
                                        attn_logit_softcapping=1.5, final_logit_softcapping=2.0)
        cfg._attn_implementation = "eager"  # soft-capping is eager-only in transformers
        model = transformers.Gemma2ForCausalLM(cfg)
    elif arch == "gemma3":
        # 7 layers: sliding-window layers 0-4 and 6 (window 8 positions), a global one at 5; heads
        # 32 wide over a 64-wide residual, as Gemma 3's are wider than n_embd / n_head.
        del common["rope_theta"]
        cfg = transformers.Gemma3TextConfig(**{**common, "num_hidden_layers": 7, "rms_norm_eps": 1e-6},
                                            head_dim=32, query_pre_attn_scalar=32, sliding_window=8)
        model = transformers.Gemma3ForCausalLM(cfg)
    else:
        raise ValueError(arch)
    # Random init with norms away from 1 so every weight matters.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:  # Gemma's RMSNorm scales by 1 + w
                p.copy_((0.0 if arch.startswith("gemma") else 1.0) + 0.1 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn_like(p))
            else:
                p.copy_(0.08 * torch.randn_like(p))
    model.eval()
    return model


def unpermute_from_gguf(w: np.ndarray, n_head: int) -> np.ndarray:
    """Inverse of permute_for_gguf."""
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_gguf(model, arch: str, path: str, dtype=np.float32, quant=None):
    """Writes the model as GGUF; 2-D weights in `dtype`, or quantized where quant(name) names a
    ggml type ("Q4_0", ...). Returns {gguf name: dequantized array} of the quantized tensors."""
    import gguf
    cfg = model.config
    n_head, n_kv = cfg.num_attention_heads, cfg.num_key_value_heads
    w = gguf.GGUFWriter(path, arch)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    if arch == "gemma3":
        w.add_rope_freq_base(float(cfg.rope_parameters["full_attention"]["rope_theta"]))
        w.add_key_length(cfg.head_dim)
        w.add_value_length(cfg.head_dim)
        w.add_sliding_window(cfg.sliding_window)
    elif arch in ("gemma", "gemma2"):
        w.add_rope_freq_base(float(cfg.rope_parameters["rope_theta"]))
        w.add_key_length(cfg.head_dim)
        w.add_value_length(cfg.head_dim)
        if arch == "gemma2":
            w.add_sliding_window(cfg.sliding_window)
            w.add_attn_logit_softcapping(cfg.attn_logit_softcapping)
            w.add_final_logit_softcapping(cfg.final_logit_softcapping)
    else:
        w.add_rope_freq_base(float(getattr(cfg, "rope_theta", None) or cfg.rope_parameters["rope_theta"]))
        head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // n_head
        w.add_rope_dimension_count(head_dim)
        if head_dim != cfg.hidden_size // n_head:
            w.add_key_length(head_dim)
            w.add_value_length(head_dim)
    tokens, types, merges = tiny_bpe_vocab(cfg.vocab_size)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(0)
    w.add_eos_token_id(2)
    sd = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}

    deq = {}

    def put(name, arr, force_f32=False):
        a = np.ascontiguousarray(arr)
        qt = quant(name) if quant and a.ndim == 2 else None
        if qt:
            t = gguf.GGMLQuantizationType[qt]
            raw = gguf.quants.quantize(a.astype(np.float32), t)
            w.add_tensor(name, raw, raw_dtype=t)
            deq[name] = gguf.quants.dequantize(raw, t).reshape(a.shape)
        elif a.ndim == 1 or force_f32:
            w.add_tensor(name, a.astype(np.float32))
        else:
            w.add_tensor(name, a.astype(dtype))

    shift = 1.0 if arch.startswith("gemma") else 0.0  # llama.cpp's converter stores Gemma norms as 1 + w
    put("token_embd.weight", sd["model.embed_tokens.weight"])
    put("output_norm.weight", sd["model.norm.weight"] + shift)
    if not cfg.tie_word_embeddings:
        put("output.weight", sd["lm_head.weight"])
    for i in range(cfg.num_hidden_layers):
        p = f"model.layers.{i}."
        q, k = sd[p + "self_attn.q_proj.weight"], sd[p + "self_attn.k_proj.weight"]
        if arch == "llama":
            q, k = permute_for_gguf(q, n_head), permute_for_gguf(k, n_kv)
        put(f"blk.{i}.attn_norm.weight", sd[p + "input_layernorm.weight"] + shift)
        if arch in ("gemma2", "gemma3"):
            put(f"blk.{i}.post_attention_norm.weight", sd[p + "post_attention_layernorm.weight"] + 1)
            put(f"blk.{i}.ffn_norm.weight", sd[p + "pre_feedforward_layernorm.weight"] + 1)
            put(f"blk.{i}.post_ffw_norm.weight", sd[p + "post_feedforward_layernorm.weight"] + 1)
        else:
            put(f"blk.{i}.ffn_norm.weight", sd[p + "post_attention_layernorm.weight"] + shift)
        if arch == "gemma3":
            put(f"blk.{i}.attn_q_norm.weight", sd[p + "self_attn.q_norm.weight"] + 1)
            put(f"blk.{i}.attn_k_norm.weight", sd[p + "self_attn.k_norm.weight"] + 1)
        if arch == "qwen3":
            put(f"blk.{i}.attn_q_norm.weight", sd[p + "self_attn.q_norm.weight"])
            put(f"blk.{i}.attn_k_norm.weight", sd[p + "self_attn.k_norm.weight"])
        put(f"blk.{i}.attn_q.weight", q)
        put(f"blk.{i}.attn_k.weight", k)
        put(f"blk.{i}.attn_v.weight", sd[p + "self_attn.v_proj.weight"])
        put(f"blk.{i}.attn_output.weight", sd[p + "self_attn.o_proj.weight"])
        put(f"blk.{i}.ffn_gate.weight", sd[p + "mlp.gate_proj.weight"])
        put(f"blk.{i}.ffn_up.weight", sd[p + "mlp.up_proj.weight"])
        put(f"blk.{i}.ffn_down.weight", sd[p + "mlp.down_proj.weight"])
        if arch == "qwen2":
            put(f"blk.{i}.attn_q.bias", sd[p + "self_attn.q_proj.bias"])
            put(f"blk.{i}.attn_k.bias", sd[p + "self_attn.k_proj.bias"])
            put(f"blk.{i}.attn_v.bias", sd[p + "self_attn.v_proj.bias"])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return deq
