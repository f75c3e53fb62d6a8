"""The batched engine (continuous batching over a paged KV cache) on the real default model: every
request gives the same tokens batched as alone (greedy and seeded), through chunked prefill,
prefix-cache hits, preemption and cancellation, and bad requests fail alone."""
import dataclasses
import threading

import pytest

import llmasos
from llmasos import LLM, SamplingParams, _core

N_CTX = 1024
BLOCK = 16


@pytest.fixture(scope="module")
def llm(smollm2_gguf):
    with LLM.from_pretrained(smollm2_gguf, n_ctx=N_CTX, threads=2) as m:
        yield m


def long_prompt(llm, n):
    text = ("In the beginning the river ran through the valley, and the people who lived there "
            "built their houses of stone and wood along its banks. ") * 40
    return llm.tokenize(text)[:n]


@pytest.fixture(scope="module")
def prompts(llm):
    """Eight prompts of different lengths, one longer than the 512-token step budget."""
    texts = ["The world is", "Once upon a time, in a small village,", "def fibonacci(n):\n",
             "<|im_start|>user\nWhat is the tallest mountain on Earth?<|im_end|>\n<|im_start|>assistant\n",
             "Hi", "SELECT name, age FROM users WHERE"]
    ids = [llm.tokenize(t) for t in texts]
    ids.append(long_prompt(llm, 37))
    ids.append(long_prompt(llm, 600))
    return ids


def alone(llm, ids, params):
    """The single-sequence path (Session, contiguous KV cache): the reference."""
    return llm._run(list(ids), params).token_ids


def run_engine(engine, requests):
    """requests: {id: (ids, GenerateOptions)}; returns {id: (tokens, finish_reason)}."""
    for rid, (ids, opts) in requests.items():
        engine.add_request(rid, ids, opts)
    out = {rid: [] for rid in requests}
    reasons = {}
    while engine.has_unfinished():
        for rid, toks, finished, reason, _, _, _ in engine.step():
            assert rid not in reasons, "output after finish"
            out[rid] += toks
            if finished:
                reasons[rid] = reason
    return {rid: (out[rid], reasons.get(rid)) for rid in requests}


GREEDY = SamplingParams(max_tokens=20, ignore_eos=True)


@pytest.fixture(scope="module")
def reference(llm, prompts):
    return [alone(llm, p, GREEDY) for p in prompts]


@pytest.mark.parametrize("budget", [512, 48])
def test_batched_greedy_equals_alone(llm, prompts, reference, budget):
    engine = _core.Engine(llm._model, max_batch_tokens=budget)
    res = run_engine(engine, {i: (p, GREEDY.to_core()) for i, p in enumerate(prompts)})
    for i in range(len(prompts)):
        assert res[i] == (reference[i], "length"), i
    st = engine.stats()
    assert st["blocks_used"] == 0 and st["running"] == 0 and st["waiting"] == 0
    # Prompt tokens computed + those found in the prefix cache (prompts 6 and 7 share a prefix).
    assert st["prompt_tokens"] + BLOCK * st["prefix_hits"] == sum(len(p) for p in prompts)
    assert st["generated_tokens"] == 20 * len(prompts)


def test_llm_generate_batched_equals_alone(llm, prompts, reference):
    outs = llm.generate(prompts, GREEDY)
    assert [o.token_ids for o in outs] == reference
    for o, p in zip(outs, prompts):
        assert o.prompt_token_ids == p and o.finish_reason == "length"
        assert o.text == llm.detokenize(o.token_ids)


def test_generate_with_stop_strings_and_eos_matches_alone(llm, prompts):
    params = SamplingParams(max_tokens=40, stop=[".", "\n\n"])
    outs = llm.generate(prompts[:6], params)
    for o, p in zip(outs, prompts[:6]):
        ref = llm._run(list(p), params)
        assert (o.text, o.token_ids, o.finish_reason) == (ref.text, ref.token_ids, ref.finish_reason)


def test_seeded_sampling_same_alone_or_batched(llm, prompts):
    params = SamplingParams(max_tokens=16, temperature=0.9, top_k=40, top_p=0.95, seed=4321,
                            repetition_penalty=1.1, ignore_eos=True)
    ref = [alone(llm, p, params) for p in prompts[:4]]
    solo = llm.generate([prompts[1]], params)[0].token_ids
    batched = llm.generate(prompts[:4], params)
    assert solo == ref[1]
    assert [o.token_ids for o in batched] == ref


def test_seeded_logprobs_same_alone_or_batched(llm, prompts):
    """Logprobs come from each sequence's own logits row: a seeded sampled request gives the
    same tokens and the same logprobs (bit for bit) alone on the engine and batched with others,
    and the single-sequence path agrees."""
    params = SamplingParams(max_tokens=12, temperature=0.8, top_p=0.9, seed=77, logprobs=5,
                            ignore_eos=True)
    solo = llm.generate([prompts[2]], params)[0]
    batched = llm.generate(prompts[:6], dataclasses.replace(params, logprobs=None))
    batched_lp = llm.generate(prompts[:6], params)
    engine = _core.Engine(llm._model, max_batch_tokens=48)  # chunked prefill, other batches
    raw = {}
    for rid, p in enumerate(prompts[:6]):
        engine.add_request(rid, p, params.to_core())
    while engine.has_unfinished():
        for rid, toks, _, _, lps, _, _ in engine.step():
            assert lps is not None and len(lps) == len(toks)
            raw.setdefault(rid, []).extend(lps)
    assert solo.token_ids == batched_lp[2].token_ids == batched[2].token_ids
    assert solo.logprobs == batched_lp[2].logprobs  # exact
    assert solo.cumulative_logprob == batched_lp[2].cumulative_logprob
    assert [(lp.logprob, lp.rank) for lp in (d[t] for d, t in zip(solo.logprobs, solo.token_ids))] == \
        [(lp, rank) for lp, rank, _ in raw[2]]
    assert all(o.logprobs is None and o.cumulative_logprob is None for o in batched)
    ref = llm._run(list(prompts[2]), params)
    assert ref.token_ids == solo.token_ids
    for a, b in zip(ref.logprobs, solo.logprobs):
        assert a.keys() == b.keys()
        assert all(abs(a[t].logprob - b[t].logprob) < 1e-4 for t in a)


def test_logprobs_off_and_bounds(llm, prompts):
    engine = _core.Engine(llm._model)
    engine.add_request(1, prompts[0], GREEDY.to_core())
    while engine.has_unfinished():
        for _, _, _, _, lps, _, _ in engine.step():
            assert lps is None  # not asked for: nothing computed or returned
    for k in (-2, 21):
        o = GREEDY.to_core()
        o.sampling.logprobs = k
        with pytest.raises(llmasos.InvalidArgumentError, match="logprobs"):
            engine.add_request(2, prompts[0], o)
    assert not engine.has_unfinished()


def test_prefix_cache_hit_for_shared_prefix(llm):
    engine = _core.Engine(llm._model)
    base = long_prompt(llm, 200)
    a = base + llm.tokenize(" The first question is")
    b = base + llm.tokenize(" Something else entirely")
    opts = GREEDY.to_core()
    run_engine(engine, {1: (a, opts)})
    before = engine.stats()
    assert before["blocks_used"] == 0 and before["blocks_cached"] >= 200 // BLOCK
    res = run_engine(engine, {2: (b, opts)})
    after = engine.stats()
    assert after["prefix_hits"] - before["prefix_hits"] == 200 // BLOCK
    assert after["prefix_hit_rate"] > 0
    # The tokens processed for b exclude the cached prefix.
    assert after["prompt_tokens"] - before["prompt_tokens"] == len(b) - (200 // BLOCK) * BLOCK
    assert res[2][0] == alone(llm, b, GREEDY)
    # Identical prompts at once share the cached blocks and still give the same tokens.
    res2 = run_engine(engine, {3: (b, opts), 4: (b, opts)})
    assert res2[3] == res2[4] == res[2]
    engine.reset_prefix_cache()
    assert engine.stats()["blocks_cached"] == 0


def test_preemption_with_tiny_pool_gives_same_outputs(llm, prompts, reference):
    st = _core.Engine(llm._model).stats()
    per_block = st["kv_cache_bytes"] // st["blocks_total"]
    small = prompts[:6]
    need = max(-(-(len(p) + 20) // BLOCK) for p in small)
    engine = _core.Engine(llm._model, kv_cache_bytes=(need + 3) * per_block)
    assert engine.stats()["blocks_total"] == need + 3
    res = run_engine(engine, {i: (p, GREEDY.to_core()) for i, p in enumerate(small)})
    for i in range(len(small)):
        assert res[i] == (reference[i], "length"), i
    st = engine.stats()
    assert st["preemptions"] > 0 and st["blocks_used"] == 0


def test_max_seqs_limits_running(llm, prompts, reference):
    engine = _core.Engine(llm._model, max_seqs=2, max_batch_tokens=64)
    reqs = {i: (p, GREEDY.to_core()) for i, p in enumerate(prompts[:5])}
    for rid, (ids, opts) in reqs.items():
        engine.add_request(rid, ids, opts)
    out = {rid: [] for rid in reqs}
    while engine.has_unfinished():
        for rid, toks, _, _, _, _, _ in engine.step():
            out[rid] += toks
        assert engine.stats()["running"] <= 2
    assert [out[i] for i in range(5)] == reference[:5]


def test_cancel_mid_run_frees_blocks(llm, prompts, reference):
    engine = _core.Engine(llm._model, max_batch_tokens=64)
    idle = engine.stats()["blocks_used"]
    opts = SamplingParams(max_tokens=200, ignore_eos=True).to_core()
    for i, p in enumerate(prompts[:3]):
        engine.add_request(i, p, opts)
    engine.add_request(9, prompts[4], GREEDY.to_core())
    got = []
    for _ in range(4):
        for rid, toks, _, _, _, _, _ in engine.step():
            if rid == 9:
                got += toks
    assert engine.stats()["blocks_used"] > idle
    assert engine.cancel(0) and engine.cancel(1)
    assert not engine.cancel(0) and not engine.cancel(12345)
    while engine.has_unfinished():
        for rid, toks, fin, _, _, _, _ in engine.step():
            assert rid not in (0, 1)
            if rid == 9:
                got += toks
                if fin:
                    assert engine.cancel(2)
    st = engine.stats()
    assert got == reference[4]
    assert st["blocks_used"] == idle and st["running"] == 0 and st["waiting"] == 0
    assert st["cancelled"] == 3
    # A request cancelled before it ever ran, and an id reused after cancel.
    engine.add_request(5, prompts[0], opts)
    assert engine.cancel(5)
    assert not engine.has_unfinished()
    engine.add_request(5, prompts[0], GREEDY.to_core())
    assert engine.has_unfinished()
    toks = []
    while engine.has_unfinished():
        for rid, t, _, _, _, _, _ in engine.step():
            toks += t
    assert toks == reference[0]


def test_cancel_from_another_thread_while_stepping(llm, prompts):
    engine = _core.Engine(llm._model, max_batch_tokens=64)
    opts = SamplingParams(max_tokens=500, ignore_eos=True).to_core()
    for i, p in enumerate(prompts[:4]):
        engine.add_request(i, p, opts)
    stop = threading.Event()

    def loop():
        while not stop.is_set() and engine.has_unfinished():
            engine.step()

    t = threading.Thread(target=loop)
    t.start()
    try:
        for _ in range(6000):
            if engine.stats()["generated_tokens"] >= 8 or not t.is_alive():
                break
            stop.wait(0.01)
        assert engine.stats()["generated_tokens"] >= 8
        for i in range(4):
            assert engine.cancel(i)
    finally:
        stop.set()
        t.join()
    engine.step()  # applies nothing new; the cancels were applied by the stepping thread or at once
    st = engine.stats()
    assert st["blocks_used"] == 0 and not engine.has_unfinished()


def test_bad_requests_raise_without_disturbing_others(llm, prompts, reference):
    engine = _core.Engine(llm._model)
    engine.add_request(1, prompts[0], GREEDY.to_core())
    res = {1: []}
    for rid, toks, _, _, _, _, _ in engine.step():
        res[rid] += toks
    V = llm.n_vocab
    bad = [
        ([], "empty"),
        ([1, V], "out of range"),
        ([-1, 5], "out of range"),
        ([10] * N_CTX, "context size"),
    ]
    for ids, msg in bad:
        with pytest.raises(llmasos.InvalidArgumentError, match=msg):
            engine.add_request(2, ids, GREEDY.to_core())
    o = GREEDY.to_core()
    o.max_tokens = 0
    with pytest.raises(llmasos.InvalidArgumentError, match="max_tokens"):
        engine.add_request(2, prompts[1], o)
    o = GREEDY.to_core()
    o.sampling.temperature = float("nan")
    with pytest.raises(llmasos.InvalidArgumentError, match="temperature"):
        engine.add_request(2, prompts[1], o)
    with pytest.raises(llmasos.InvalidArgumentError, match="already in use"):
        engine.add_request(1, prompts[1], GREEDY.to_core())
    with pytest.raises(TypeError):
        engine.add_request(3, ["a"], GREEDY.to_core())
    st = engine.stats()
    tiny = _core.Engine(llm._model, kv_cache_bytes=2 * st["kv_cache_bytes"] // st["blocks_total"])
    with pytest.raises(llmasos.InvalidArgumentError, match="KV pool"):
        tiny.add_request(1, prompts[-1], GREEDY.to_core())
    with pytest.raises(llmasos.InvalidArgumentError):
        _core.Engine(llm._model, kv_cache_bytes=100)
    with pytest.raises(llmasos.InvalidArgumentError):
        _core.Engine(llm._model, max_batch_tokens=0)
    while engine.has_unfinished():
        for rid, toks, _, _, _, _, _ in engine.step():
            res[rid] += toks
    assert res == {1: reference[0]}
    assert engine.stats()["blocks_used"] == 0


def test_stop_token_and_eos_end_requests_like_alone(llm, prompts):
    greedy = alone(llm, prompts[0], GREEDY)
    stop_params = SamplingParams(max_tokens=20, stop_token_ids=[greedy[5]])
    eos_params = SamplingParams(max_tokens=60)  # may end at EOS
    engine = _core.Engine(llm._model)
    res = run_engine(engine, {0: (prompts[0], stop_params.to_core()),
                              1: (prompts[3], eos_params.to_core())})
    assert res[0] == (greedy[:5], "stop")
    ref = llm._run(list(prompts[3]), eos_params)
    assert res[1] == (ref.token_ids, ref.finish_reason)


def test_context_full_finishes_with_length(smollm2_gguf):
    with LLM.from_pretrained(smollm2_gguf, n_ctx=64, threads=2) as small:
        ids = small.tokenize("Count with me: one, two, three, four, five, six, seven,")
        p = SamplingParams(max_tokens=500, ignore_eos=True)
        ref = small._run(ids, p)
        out = small.generate([ids, ids[:5]], p)
        assert (out[0].token_ids, out[0].finish_reason) == (ref.token_ids, "length")
        assert len(ids) + len(out[0].token_ids) == 64 + 1
        assert out[1].token_ids == small._run(ids[:5], p).token_ids


# -- block accounting of the paged KV cache, without a model ------------------------------------

def seq_tokens(seed, n):
    return [(seed * 1000 + i * 7) % 5000 for i in range(n)]


def test_kv_blocks_alloc_release_and_prefix_hits():
    c = _core._PagedKvCache(2, 8, 10)
    a = c.new_table()
    toks = seq_tokens(1, 40)  # 2 full blocks + 8
    assert c.match_prefix(a, toks) == 0
    assert c.reserve(a, 40) and len(c.blocks(a)) == 3
    assert c.stats()["blocks_used"] == 3
    c.commit(a, toks)  # registers the 2 full blocks
    b = c.new_table()
    assert c.match_prefix(b, toks[:39]) == 32  # shared while a holds them
    assert c.blocks(b) == c.blocks(a)[:2]
    assert c.stats()["blocks_used"] == 3
    c.release(a)
    assert c.stats()["blocks_used"] == 2  # b still holds the two shared blocks
    c.release(b)
    st = c.stats()
    assert st["blocks_used"] == 0 and st["blocks_cached"] == 2 and st["blocks_free"] == 10
    assert st["prefix_queries"] == 2 + 2 and st["prefix_hits"] == 2
    # A different first block: no hit, even when a later block's tokens are equal.
    d = c.new_table()
    assert c.match_prefix(d, [9] * 16 + toks[16:32]) == 0
    # All or nothing: 11 blocks do not fit in 10; nothing changes.
    assert not c.reserve(d, 11 * 16) and c.blocks(d) == []
    assert c.stats()["blocks_cached"] == 2


def test_kv_blocks_lru_eviction_tail_first():
    c = _core._PagedKvCache(1, 4, 4)
    a = c.new_table()
    toks = seq_tokens(2, 64)
    assert c.reserve(a, 64)
    c.commit(a, toks)
    c.release(a)  # 4 cached blocks; the tail is evicted first
    b = c.new_table()
    assert c.reserve(b, 16)  # evicts block 4 of a's sequence
    assert c.stats()["evictions"] == 1
    e = c.new_table()
    assert c.match_prefix(e, toks) == 48  # the first three blocks are still found
    c.release(e)
    c.release(b)
    c.reset_prefix_cache()
    st = c.stats()
    assert st["blocks_cached"] == 0 and st["blocks_free"] == 4
    f = c.new_table()
    assert c.match_prefix(f, toks) == 0


def test_kv_blocks_fork_shares_full_blocks_and_copies_partial():
    c = _core._PagedKvCache(1, 4, 5)
    a = c.new_table()
    assert c.reserve(a, 40)  # 3 blocks, the last partial
    b = c.fork(a, 40)
    assert c.blocks(b)[:2] == c.blocks(a)[:2] and c.blocks(b)[2] != c.blocks(a)[2]
    assert c.stats()["blocks_used"] == 4
    assert c.fork(a, 32) is not None  # whole blocks only: no copy needed
    assert c.stats()["blocks_used"] == 4
    c.release(a)
    assert c.stats()["blocks_used"] == 3
    assert c.reserve(c.new_table(), 32)  # the pool is full now
    assert c.fork(b, 40) is None  # no free block for the partial copy
    with pytest.raises(llmasos.InvalidArgumentError):
        c.fork(b, 100)
    with pytest.raises(llmasos.InvalidArgumentError):
        _core._PagedKvCache(1, 4, 0)


def test_kv_blocks_truncate_and_reserve_without_eviction():
    """A rejected prompt-lookup draft's blocks go back at once (truncate); a draft takes only
    free blocks, never a cached prefix (reserve without eviction)."""
    c = _core._PagedKvCache(1, 4, 4)
    a = c.new_table()
    toks = list(range(100, 132))
    assert c.reserve(a, 32)
    c.commit(a, toks)
    c.release(a)  # 2 cached blocks, 2 free
    b = c.new_table()
    assert not c.reserve(b, 48, evict=False) and c.blocks(b) == []  # 3 > 2 free: all or nothing
    assert c.reserve(b, 20, evict=False) and c.stats()["blocks_cached"] == 2
    assert c.reserve(b, 40) and c.stats()["evictions"] == 1  # the ordinary reserve evicts
    c.truncate(b, 17)  # 2 blocks hold positions 0..16
    assert len(c.blocks(b)) == 2 and c.stats()["blocks_used"] == 2
    c.truncate(b, 40)  # growing is reserve's: no change
    assert len(c.blocks(b)) == 2
    c.release(b)
    assert c.stats()["blocks_used"] == 0

