"""End-to-end parity on the real default model: teacher-forced logits against Hugging Face
transformers running the same GGUF dequantized to float32 (the reference)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import hf_reference  # noqa: E402
from llmasos import LLM, SamplingParams, _core  # noqa: E402

# Twenty prompts of different kinds (prose, code, chat, facts): the rate below is measured over
# ~800 teacher-forced positions, so one near-tie flip moves it by about 0.1%.
PROMPTS = [
    "The world is",
    "Once upon a time, in a small village,",
    "def fibonacci(n):\n",
    "The capital of France is",
    "Water boils at a temperature of",
    "<|im_start|>user\nWhat is the tallest mountain on Earth?<|im_end|>\n<|im_start|>assistant\n",
    "In 1969, the first humans",
    "The best way to learn a new language is",
    "import numpy as np\n\n# compute the mean of",
    "Photosynthesis is the process by which",
    "My favourite recipe for pancakes:",
    "The stock market today",
    "<|im_start|>user\nWrite a haiku about the sea.<|im_end|>\n<|im_start|>assistant\n",
    "Dear Sir or Madam,",
    "The three primary colors are",
    "SELECT name, age FROM users WHERE",
    "A black hole is",
    "The recipe calls for 2 cups of",
    "Albert Einstein was born in",
    "<|im_start|>user\nExplain recursion to a child.<|im_end|>\n<|im_start|>assistant\n",
]
N_REF_TOKENS = 32


@pytest.fixture(scope="module")
def reference(smollm2_gguf):
    """For each prompt: HF's token ids of prompt + 32 greedy tokens, and HF's logits over them."""
    tok, model = hf_reference.load(smollm2_gguf)
    return hf_reference.greedy_reference(tok, model, PROMPTS, N_REF_TOKENS, tok.eos_token_id,
                                         add_special_tokens=False)


@pytest.fixture(scope="module")
def llm(smollm2_gguf):
    with LLM.from_pretrained(smollm2_gguf, n_ctx=512) as m:
        yield m


def teacher_forced_top1_rate(llm, reference):
    """Our top-1 agreement with the reference's over every teacher-forced position; fails where our
    top-1 is outside the reference's top 5."""
    agree = total = 0
    worst_rank = 0
    for prompt_ids, full_ids, ref_logits in reference:
        ours = llm.logits(full_ids)
        assert ours.shape == ref_logits.shape
        assert np.isfinite(ours).all()
        ours_top1 = ours.argmax(-1)
        ref_top1 = ref_logits.argmax(-1)
        agree += int((ours_top1 == ref_top1).sum())
        total += len(full_ids)
        # Our top-1 must be among the reference's top 5 at every position.
        ref_top5 = np.argsort(-ref_logits, axis=-1)[:, :5]
        for pos in range(len(full_ids)):
            assert ours_top1[pos] in ref_top5[pos], (
                f"position {pos} of {full_ids[:len(prompt_ids)]}: our top-1 {ours_top1[pos]} not in "
                f"reference top-5 {ref_top5[pos].tolist()}")
            rank = int((ref_logits[pos] > ref_logits[pos][ours_top1[pos]]).sum())
            worst_rank = max(worst_rank, rank)
    rate = agree / total
    print(f"teacher-forced top-1 agreement {agree}/{total} = {rate:.4f}; worst reference rank {worst_rank}")
    return rate


def test_teacher_forced_top1_and_top5(llm, reference):
    assert teacher_forced_top1_rate(llm, reference) >= 0.97


def test_q8_kv_cache_teacher_forced_top1_and_top5(smollm2_gguf, reference):
    """The 8-bit KV cache (int8 keys and values, a scale per 32 dimensions of each position and
    head) against the float32 reference: our top-1 always in its top 5, and the F16 cache's bar
    for top-1 agreement (measured 785 / 804 = 0.976; F16: 791 / 804 = 0.984)."""
    with LLM.from_pretrained(smollm2_gguf, n_ctx=512, kv_cache_type="q8_0") as m:
        assert teacher_forced_top1_rate(m, reference) >= 0.97


def test_tokenization_matches_reference(llm, reference):
    # transformers' GGUF tokenizer ignores tokenizer.ggml.pre ("smollm" splits digits off first),
    # so compare only prompts where that split cannot matter (no digits); test_tokenizer.py
    # covers digits against a reference with the right pre-tokenizer.
    for p, (prompt_ids, _, _) in zip(PROMPTS, reference):
        if not any(c.isdigit() for c in p):
            assert llm.tokenize(p, special=True) == prompt_ids


def test_greedy_generation_follows_reference(llm, reference):
    """Where our greedy decode departs from the reference, the reference had a near tie
    (quantized activations may flip those)."""
    hf_reference.assert_follows_reference(llm, reference, N_REF_TOKENS)


def test_greedy_text_identical_across_isa_levels(smollm2_gguf):
    """One prompt alone, then six batched (a 40-token prompt fills whole 16-token tiles at the amx
    levels, the batch's decode steps run 6 tokens per product): the same text under every level.
    The batch skips the scalar generic level (15 s here); its kernels are compared bit for bit with
    the others' in test_isa_determinism.py."""
    batch = ["The world is", "Water boils at a temperature of",
             "List three colours of the rainbow, then explain in a sentence or two why the sky looks "
             "blue on a clear day and red at sunset, and what the ocean has to do with it:",
             "def fibonacci(n):", "Paris is the capital of", "1, 2, 3, 4,"]
    params = SamplingParams(max_tokens=12, ignore_eos=True)
    texts, batched = {}, {}
    with LLM.from_pretrained(smollm2_gguf, n_ctx=256) as llm:
        before = _core.active_isa()
        try:
            for isa in _core.supported_isas() + _core.emulated_isas():
                _core.select_isa(isa)
                alone = llm.generate_text("The world is", max_tokens=24)
                texts[isa] = alone
                if isa != "generic":
                    batched[isa] = tuple(o.text for o in llm.generate(batch, params))
        finally:
            _core.select_isa(before)
    assert len(set(texts.values())) == 1, texts
    assert len(set(batched.values())) == 1, batched
