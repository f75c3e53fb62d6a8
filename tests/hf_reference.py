"""The real-model parity tests' reference: transformers reading a GGUF (dequantized to float32),
its greedy continuations and logits, and the check that our greedy decode follows them."""
from __future__ import annotations

import os


def load(gguf_path):
    """(tokenizer, model) of transformers' own GGUF reader, in float32, eval mode."""
    import torch
    import transformers
    d, f = os.path.split(gguf_path)
    tok = transformers.AutoTokenizer.from_pretrained(d, gguf_file=f)
    model = transformers.AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32)
    model.eval()
    return tok, model


def greedy_reference(tok, model, prompts, n_tokens, pad_token_id, **tok_kwargs):
    """For each prompt: (prompt ids, prompt + n_tokens greedy ids, logits over those) from
    transformers; tok_kwargs go to the tokenizer (add_special_tokens=False: no BOS)."""
    import torch
    out = []
    with torch.no_grad():
        for p in prompts:
            ids = tok(p, return_tensors="pt", **tok_kwargs).input_ids
            gen = model.generate(ids, max_new_tokens=n_tokens, min_new_tokens=n_tokens,
                                 do_sample=False, pad_token_id=pad_token_id)
            out.append((ids[0].tolist(), gen[0].tolist(), model(gen).logits[0].float().numpy()))
    return out


def assert_follows_reference(llm, reference, n_tokens, max_margin=1.0):
    """Our own greedy decode (through the KV cache) follows the reference continuation; where it
    departs, the reference itself had a near tie there (within max_margin logits)."""
    from llmasos import SamplingParams
    for prompt_ids, full_ids, ref_logits in reference:
        out = llm.generate(prompt_ids, SamplingParams(max_tokens=n_tokens, ignore_eos=True))[0]
        for i, (a, b) in enumerate(zip(out.token_ids, full_ids[len(prompt_ids):])):
            if a != b:
                row = ref_logits[len(prompt_ids) + i - 1]
                margin = float(row[b] - row[a])
                assert margin < max_margin, f"departed from the reference at token {i} with margin {margin}"
                break
