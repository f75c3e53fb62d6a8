"""Prompt-lookup speculation (LLM(prompt_lookup=k), Session::generate): drafts are the tokens that
followed an earlier occurrence of the context's last n-gram, checked in one forward pass. The
output must be the same token for token as without it (greedy, seeded sampling, logprobs, stop
tokens, JSON mode, max_tokens and context limits) on real models, while drafts are taken."""
import subprocess
import sys

import pytest

from llmasos import LLM, SamplingParams, _core

PARA = ("It was a bright cold day in April, and the clocks were striking thirteen. Winston Smith, his chin "
        "nuzzled into his breast in an effort to escape the vile wind, slipped quickly through the glass doors "
        "of Victory Mansions, though not quickly enough to prevent a swirl of gritty dust from entering along "
        "with him.")
COPY = [{"role": "user", "content": "Repeat this text exactly, word for word:\n\n" + PARA}]


def test_draft_follows_the_latest_match():
    d = _core.prompt_lookup_draft
    # The last 3 tokens (7 8 9) occur earlier; what followed their latest occurrence is the draft.
    assert d([1, 7, 8, 9, 2, 3, 7, 8, 9, 4, 5], [6, 7, 8, 9], 3) == [4, 5, 6]
    assert d([1, 7, 8, 9, 2, 3], [7, 8, 9], 8) == [2, 3, 7, 8, 9]  # up to the end of the context
    assert d([5, 6, 7, 1, 2, 5, 6, 7], [], 2) == [1, 2]
    assert d([5, 6, 1, 2, 5, 6], [], 2) == []            # 2 tokens are not a match
    assert d([1, 2, 3, 4], [5], 4) == []                 # no match
    assert d([1, 2, 3, 1, 2, 3], [], 0) == []            # nothing asked
    assert d([9], [], 4) == [] and d([], [3, 3, 3, 3], 2) == [3]


def session_run(llm, ids, params, k):
    opts = params.to_core(llm.seed)
    opts.lookup_tokens = k
    llm._session.reset()
    toks, finish, _, lps, stop, drafted, _ = llm._session.generate(ids, opts, None)
    return (toks, finish, lps, stop), drafted


@pytest.fixture(scope="module")
def smol(smollm2_gguf):
    with LLM.from_pretrained(smollm2_gguf, n_ctx=512, threads=2) as m:
        yield m


@pytest.mark.parametrize("params", [
    SamplingParams(max_tokens=80),
    SamplingParams(max_tokens=80, temperature=0.8, seed=3),
    SamplingParams(max_tokens=80, temperature=0.7, top_p=0.9, repetition_penalty=1.1, seed=5, logprobs=3),
    SamplingParams(max_tokens=7),   # max_tokens inside a drafted run
    SamplingParams(max_tokens=80, json_object=True),
])
def test_same_tokens_with_and_without_lookup(smol, params):
    ids = smol.chat_prompt_ids(COPY)
    plain, _ = session_run(smol, ids, params, 0)
    drafted_any = 0
    for k in (1, 4, 10):
        got, drafted = session_run(smol, ids, params, k)
        assert got == plain, k
        drafted_any += drafted
    if params.max_tokens > 7 and not params.json_object and params.temperature == 0:
        assert drafted_any > 0  # the copy is found in the prompt


def test_stops_and_context_end_are_the_same(smol):
    ids = smol.chat_prompt_ids(COPY)
    greedy, _ = session_run(smol, ids, SamplingParams(max_tokens=60), 0)
    stop_at = greedy[0][30]  # a token inside the copied run: the stop lands inside a draft
    for params in (SamplingParams(max_tokens=60, stop_token_ids=[stop_at]),
                   SamplingParams(max_tokens=60, logit_bias={smol._model.eos_id: 3.0})):
        assert session_run(smol, ids, params, 6)[0] == session_run(smol, ids, params, 0)[0]
    # A context that fills up mid-draft: the same tokens and "length".
    with LLM.from_pretrained(smol.path, n_ctx=len(ids) + 20, threads=2) as small:
        a, _ = session_run(small, ids, SamplingParams(max_tokens=100), 0)
        b, drafted = session_run(small, ids, SamplingParams(max_tokens=100), 8)
        assert a == b and a[1] == "length" and len(a[0]) == 21  # the last one is taken, never fed


def test_llm_option_and_gemma3_sliding_window(smollm2_gguf, gemma3_gguf):
    """LLM(prompt_lookup=k) reaches chat and stream; Gemma 3 (sliding-window layers, a 262k
    vocabulary) gives the same tokens too."""
    for bad in (-1, 65, 2 ** 50, True):
        with pytest.raises(ValueError, match="prompt_lookup"):
            LLM.from_pretrained(smollm2_gguf, prompt_lookup=bad)
    with pytest.raises(_core.LLMasOSError, match="lookup_tokens"):
        _core.Engine(LLM.from_pretrained(smollm2_gguf, n_ctx=64)._model, lookup_tokens=65)
    p = SamplingParams(max_tokens=40)
    with LLM.from_pretrained(smollm2_gguf, n_ctx=512, prompt_lookup=6) as a, \
            LLM.from_pretrained(smollm2_gguf, n_ctx=512) as b:
        assert a.chat(COPY, p).token_ids == b.chat(COPY, p).token_ids
        assert "".join(a.stream("Say: " + PARA, p)) == "".join(b.stream("Say: " + PARA, p))
    with LLM.from_pretrained(gemma3_gguf, n_ctx=512) as g:
        ids = g.chat_prompt_ids(COPY)
        plain, _ = session_run(g, ids, SamplingParams(max_tokens=40), 0)
        got, drafted = session_run(g, ids, SamplingParams(max_tokens=40), 8)
        assert got == plain and drafted > 0


def engine_run(llm, prompts, params, k, max_seqs=64):
    """Every prompt through one batched engine with lookup_tokens=k: (tokens, finish, logprobs,
    stop token) per prompt, and the engine's stats once all finished."""
    eng = _core.Engine(llm._model, lookup_tokens=k, max_seqs=max_seqs)
    opts = params.to_core(llm.seed)
    out = {i: [[], None, [], None] for i in range(len(prompts))}
    for i, ids in enumerate(prompts):
        eng.add_request(i, ids, opts)
    while eng.has_unfinished():
        for rid, toks, fin, reason, lps, stop, _ in eng.step():
            out[rid][0] += toks
            out[rid][2] += lps or []
            if fin:
                out[rid][1], out[rid][3] = reason, stop
    return [tuple(map(lambda v: tuple(v) if isinstance(v, list) else v, out[i])) for i in range(len(prompts))], \
        eng.stats()


@pytest.mark.parametrize("params", [
    SamplingParams(max_tokens=60),
    SamplingParams(max_tokens=60, temperature=0.8, seed=11, logprobs=2),
    SamplingParams(max_tokens=9, repetition_penalty=1.2),
])
def test_engine_lookup_gives_the_same_tokens(smol, params):
    """The batched engine drafts while at most 4 sequences run: the same tokens, logprobs and
    stops as without, alone, in a batch of 3 (drafts) and of 6 (no drafts), and the KV pool
    back at its idle size afterwards."""
    copy = smol.chat_prompt_ids(COPY)
    other = smol.chat_prompt_ids([{"role": "user", "content": "Name three colors."}])
    quote = smol.chat_prompt_ids([{"role": "user", "content": "Quote the first sentence: " + PARA}])
    for prompts in ([copy], [copy, other, quote], [copy, other, quote] * 2):
        plain, _ = engine_run(smol, prompts, params, 0)
        got, stats = engine_run(smol, prompts, params, 8)
        assert got == plain
        assert stats["blocks_used"] == 0 and stats["running"] == 0
        if params.temperature == 0 and params.max_tokens > 9 and len(prompts) <= 4:
            assert stats["drafted"] > 0
    # Six sequences that run to the same end: never 4 or fewer at once, so no drafts.
    even = SamplingParams(max_tokens=30, ignore_eos=True)
    got, stats = engine_run(smol, [copy, other, quote] * 2, even, 8)
    assert stats["drafted"] == 0 and got == engine_run(smol, [copy, other, quote] * 2, even, 0)[0]


def test_server_prompt_lookup(smollm2_gguf, smol):
    """llmasos serve --prompt-lookup K: the same reply as without, drafted tokens in /metrics."""
    import httpx
    from test_server import RunningServer
    want = smol.generate(smol.chat_prompt_ids(COPY), SamplingParams(max_tokens=60))[0].text
    server = RunningServer(smollm2_gguf, "--prompt-lookup", "4")
    try:
        r = httpx.post(server.base + "/v1/chat/completions",
                       json={"messages": COPY, "max_tokens": 60, "temperature": 0}, timeout=60)
        assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == want
        assert server.metrics()["llmasos_prompt_lookup_drafted_tokens"] > 0
    finally:
        server.stop()
    p = subprocess.run([sys.executable, "-m", "llmasos", "serve", smollm2_gguf, "--prompt-lookup", "65"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode != 0 and "lookup_tokens must be in [0, 64]" in p.stderr, p.stderr
