"""Gemma 3 on the real model (Gemma 3 270M, Q4_K_M): teacher-forced logits against Hugging Face
transformers running the same GGUF dequantized to float32 (its own GGUF reader and Gemma 3 code:
the reference), and the tokenizer (SentencePiece, no space prefix) against transformers'."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("gguf")

import hf_reference  # noqa: E402
from llmasos import LLM, SamplingParams  # noqa: E402

PROMPTS = [
    "The capital of France is",
    "Once upon a time, in a small village,",
    "def fibonacci(n):\n",
    "Water boils at a temperature of",
    "The three primary colors are",
    "Photosynthesis is the process by which",
    "import numpy as np\n\n# compute the mean of",
    "Albert Einstein was born in",
    "A black hole is",
    "SELECT name, age FROM users WHERE",
]
N_REF_TOKENS = 24
# Texts for the tokenizer: whitespace runs, newlines, digits, accents, CJK, emoji, markup.
TOKENIZER_TEXTS = PROMPTS + [
    "  two leading spaces and\ttabs\t\tand\n\n\nnewlines   ",
    "Numbers 1234567 and 3.14159, dates 2024-01-31.",
    "Café, naïve, Zürich, São Paulo; 東京は日本の首都です。 🙂👍",
    "<start_of_turn>user\nHi there<end_of_turn>\n<start_of_turn>model\n",
    "x = {'a': [1, 2, 3]}  # a dict\nprint(x)",
]


@pytest.fixture(scope="module")
def hf(gemma3_gguf):
    return hf_reference.load(gemma3_gguf)


@pytest.fixture(scope="module")
def reference(hf):
    """For each prompt (<bos> first, as the model expects): HF's ids of prompt + 24 greedy tokens,
    and HF's logits over them."""
    tok, model = hf
    return hf_reference.greedy_reference(tok, model, PROMPTS, N_REF_TOKENS, pad_token_id=0)


@pytest.fixture(scope="module")
def llm(gemma3_gguf):
    with LLM.from_pretrained(gemma3_gguf, n_ctx=256) as m:
        yield m


def test_teacher_forced_agreement(llm, reference):
    """8- and 16-bit activations against float32 everywhere: llama.cpp's own products differ from
    this reference as much (on these prompts its top-1 agreed at 307 of 316 positions, ours at 306,
    and its logits were up to 0.48 apart at the first position, ours 0.39)."""
    agree = total = 0
    worst_gap = 0.0
    diffs = []
    for prompt_ids, full_ids, ref in reference:
        ours = llm.logits(full_ids)
        assert ours.shape == ref.shape and np.isfinite(ours).all()
        top = ours.argmax(-1)
        agree += int((top == ref.argmax(-1)).sum())
        total += len(full_ids)
        # Where the top-1 differs, the reference had a near tie there; ours is in its top 5.
        worst_gap = max(worst_gap, float((ref.max(-1) - ref[np.arange(len(top)), top]).max()))
        ref_top5 = np.argsort(-ref, axis=-1)[:, :5]
        assert all(top[i] in ref_top5[i] for i in range(len(top)))
        diffs.extend(np.abs(ours - ref).max(-1).tolist())
    med = float(np.median(diffs))
    print(f"gemma3 teacher-forced top-1 {agree}/{total} = {agree / total:.4f}; worst gap "
          f"{worst_gap:.3f}; per-position max |dlogit| median {med:.3f}")
    assert agree / total >= 0.95
    assert worst_gap < 1.5
    assert med < 2.0


def test_tokenizer_matches_transformers(llm, hf):
    tok, _ = hf
    for text in TOKENIZER_TEXTS:
        want = tok(text).input_ids
        assert llm.tokenize(text, special=True) == want, text
        assert llm.detokenize(want[1:], special=True) == tok.decode(want[1:]), text


def test_greedy_generation_follows_reference(llm, reference):
    """Where our greedy decode departs from HF's continuation, HF itself had a near tie."""
    hf_reference.assert_follows_reference(llm, reference, N_REF_TOKENS)


def test_chat_without_a_template_uses_gemma_turns(llm):
    """This GGUF carries no chat template; its vocabulary has Gemma's turn tokens, so chat renders
    Gemma's turn format (a system message opening the first turn), each turn token one id."""
    assert llm.metadata("tokenizer.chat_template") is None
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": " Hi "},
            {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Bye"}]
    ids = llm.chat_prompt_ids(msgs)
    assert llm.detokenize(ids, special=True) == (
        "<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello."
        "<end_of_turn>\n<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n")
    assert ids[:3] == [2] + llm.tokenize("<start_of_turn>user", special=True, add_bos=False)[:2]
    assert len(llm.tokenize("<end_of_turn>", special=True, add_bos=False)) == 1


def test_server_streams_concurrently_past_the_window(gemma3_gguf):
    """The real server on Gemma 3: concurrent greedy streams, one prompt longer than the 512-token
    sliding window, each text equal to the same request run alone in process."""
    from concurrent.futures import ThreadPoolExecutor

    from test_server import RunningServer

    long_prompt = " ".join(f"Item {i}: the {w} fox." for i, w in enumerate(["red", "quick", "lazy"] * 25))
    prompts = [long_prompt, "The capital of France is", "def fibonacci(n):\n", "A black hole is"]
    with LLM.from_pretrained(gemma3_gguf, n_ctx=1024) as llm:
        assert 600 < len(llm.tokenize(long_prompt)) < 1000
        alone = [llm.generate([p], SamplingParams(max_tokens=16, ignore_eos=True))[0].text for p in prompts]
    server = RunningServer(gemma3_gguf)
    try:
        client = server.client()
        model_id = client.models.list().data[0].id

        def stream(p):
            return "".join(ch.choices[0].text for ch in client.completions.create(
                model=model_id, prompt=p, max_tokens=16, temperature=0, stream=True,
                extra_body={"ignore_eos": True}))

        with ThreadPoolExecutor(len(prompts)) as ex:
            assert list(ex.map(stream, prompts)) == alone
    finally:
        server.stop()
