"""The real-model parity tests' reference: transformers reading a GGUF (dequantized to float32),
its greedy continuations and logits, and the check that our greedy decode follows them."""
from __future__ import annotations

import contextlib
import copy
import functools
import os


@contextlib.contextmanager
def _gguf_read_once():
    """While transformers reads GGUF files: each file parsed by gguf.GGUFReader once, its metadata
    converted once, and gguf's tensor-name map built once per (arch, layers). transformers 5
    parses a file four times for one tokenizer + model (tokenizer config, tokenizer, model config,
    tensors), converting every metadata value in Python each time, and rebuilds the name map once
    per tensor: about 40 s of SmolLM2's 45, minutes for Gemma 3's 262k-token vocabulary. The
    reader is read-only, the metadata is handed out as a fresh copy each time and the map is a
    pure function of its arguments, so the reference computed is the same; all three are put back
    afterwards."""
    import gguf
    from transformers import modeling_gguf_pytorch_utils as hf_gguf
    reader, name_map, checkpoint = gguf.GGUFReader, gguf.get_tensor_name_map, hf_gguf.load_gguf_checkpoint
    readers, metadata = {}, {}

    def read(path, *args, **kwargs):
        key = (os.path.realpath(path), args, tuple(sorted(kwargs.items())))
        if key not in readers:
            readers[key] = reader(path, *args, **kwargs)
        return readers[key]

    def load_checkpoint(path, return_tensors=False, **kwargs):
        if return_tensors or kwargs:
            return checkpoint(path, return_tensors=return_tensors, **kwargs)
        key = os.path.realpath(path)
        if key not in metadata:
            metadata[key] = checkpoint(path)
        return copy.deepcopy(metadata[key])

    gguf.GGUFReader, gguf.get_tensor_name_map = read, functools.lru_cache(maxsize=None)(name_map)
    hf_gguf.load_gguf_checkpoint = load_checkpoint
    try:
        yield
    finally:
        gguf.GGUFReader, gguf.get_tensor_name_map = reader, name_map
        hf_gguf.load_gguf_checkpoint = checkpoint


def load_tokenizer(gguf_path):
    """transformers' tokenizer built from the GGUF's own vocabulary."""
    import transformers
    d, f = os.path.split(gguf_path)
    with _gguf_read_once():
        return transformers.AutoTokenizer.from_pretrained(d, gguf_file=f)


def load(gguf_path):
    """(tokenizer, model) of transformers' own GGUF reader, in float32, eval mode."""
    import torch
    import transformers
    d, f = os.path.split(gguf_path)
    with _gguf_read_once():
        tok = transformers.AutoTokenizer.from_pretrained(d, gguf_file=f)
        model = transformers.AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32)
    model.eval()
    return tok, model


def greedy_reference(tok, model, prompts, n_tokens, pad_token_id, **tok_kwargs):
    """For each prompt: (prompt ids, prompt + n_tokens greedy ids, logits over those) from
    transformers; tok_kwargs go to the tokenizer (add_special_tokens=False: no BOS).
    The continuations are generated as one left-padded batch (one forward a step instead of one per
    prompt a step: 20 prompts x 32 tokens took about a minute one by one); the logits are then
    computed for each prompt + continuation alone, without padding. Padding moves the batch's
    float32 logits by rounding only, which at a near tie could pick the other token: the tests
    that use the continuation allow departures only where the reference's own logits tie."""
    import torch
    ids = [tok(p, **tok_kwargs).input_ids for p in prompts]
    width = max(map(len, ids))
    batch = torch.tensor([[pad_token_id] * (width - len(i)) + i for i in ids])
    mask = torch.tensor([[0] * (width - len(i)) + [1] * len(i) for i in ids])
    out = []
    with torch.no_grad():
        gen = model.generate(batch, attention_mask=mask, max_new_tokens=n_tokens,
                             min_new_tokens=n_tokens, do_sample=False, pad_token_id=pad_token_id)
        for i, prompt_ids in enumerate(ids):
            full = prompt_ids + gen[i, width:].tolist()
            out.append((prompt_ids, full, model(torch.tensor([full])).logits[0].float().numpy()))
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
