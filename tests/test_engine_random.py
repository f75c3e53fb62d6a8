"""Random schedules against the batched engine (hypothesis, derandomized so a failure reproduces):
requests that share prompt prefixes arrive between steps, some are cancelled at any point, the KV
pool is small enough to force preemption and the step budget small enough to chunk prompts. Every
request that runs to the end must give exactly its tokens alone (greedy), a cancelled one a prefix
of them, no output may follow a finish, and the pool must be back at idle afterwards. (As set
here, the 40 schedules hold about 230 requests, 100 cancellations, 300 prefix-block hits and 20
preemptions, in 11 of the schedules.)"""
import pytest
from hypothesis import given, settings, strategies as st

from llmasos import LLM, SamplingParams, _core

BLOCK = 16
MAX_NEW = 20


@pytest.fixture(scope="module")
def llm(smollm2_gguf):
    with LLM.from_pretrained(smollm2_gguf, n_ctx=256, threads=2) as m:
        yield m


@pytest.fixture(scope="module")
def world(llm):
    """Shared prefixes (one of 3 full blocks, one of 1 block + 4 tokens), a reference cache, and
    the bytes of one KV block."""
    text = ("The committee met on a grey morning to discuss the harbour, the new bridge and the "
            "price of bread, and nobody agreed on anything at all. ") * 4
    ids = llm.tokenize(text)
    st_ = _core.Engine(llm._model).stats()
    return {"prefixes": [[], ids[:3 * BLOCK], ids[3 * BLOCK:4 * BLOCK + 4]], "refs": {},
            "per_block": st_["kv_cache_bytes"] // st_["blocks_total"]}


def reference(llm, world, prompt):
    key = tuple(prompt)
    if key not in world["refs"]:
        world["refs"][key] = llm._run(list(prompt), SamplingParams(max_tokens=MAX_NEW, ignore_eos=True)).token_ids
    return world["refs"][key]


# (prefix, suffix tokens, max new tokens, arrival step, cancel step or None)
request = st.tuples(st.sampled_from([1, 2, 0, 1]), st.lists(st.integers(300, 3000), min_size=1, max_size=6),
                    st.integers(1, MAX_NEW), st.integers(0, 6), st.one_of(st.none(), st.integers(0, 12)))


@settings(max_examples=40, derandomize=True, deadline=None, database=None)
@given(requests=st.lists(request, min_size=2, max_size=10), extra_blocks=st.integers(0, 5),
       budget=st.sampled_from([8, 24, 512]), max_seqs=st.sampled_from([1, 3, 64]),
       reset_at=st.one_of(st.none(), st.integers(0, 8)))
def test_random_schedules_match_alone(llm, world, requests, extra_blocks, budget, max_seqs, reset_at):
    # The longest request (3 blocks of prefix, 6 tokens, 20 new) needs 5 blocks: the smallest pool
    # holds exactly one of them.
    engine = _core.Engine(llm._model, max_batch_tokens=budget, max_seqs=max_seqs,
                          kv_cache_bytes=(5 + extra_blocks) * world["per_block"])
    prompts = [world["prefixes"][p] + suffix for p, suffix, *_ in requests]
    out, finished, cancelled = {i: [] for i in range(len(requests))}, {}, set()
    added = set()
    t = 0
    while t <= 12 or engine.has_unfinished():
        for i, (_, _, n, arrive, cancel_at) in enumerate(requests):
            if arrive == t:
                engine.add_request(i, prompts[i], SamplingParams(max_tokens=n, ignore_eos=True).to_core())
                added.add(i)
            if cancel_at == t:  # also of requests not yet added or already finished: a no-op
                live = i in added and i not in finished and i not in cancelled
                assert engine.cancel(i) == live, i
                if live:
                    cancelled.add(i)
        if reset_at == t:
            engine.reset_prefix_cache()
        for rid, toks, fin, reason, _, _, _ in engine.step():
            assert rid in added and rid not in finished and rid not in cancelled, rid
            out[rid] += toks
            if fin:
                finished[rid] = reason
        t += 1
        assert t < 500, "the engine does not finish"
    for i, (_, _, n, _, _) in enumerate(requests):
        ref = reference(llm, world, prompts[i])[:n]
        if i in cancelled:
            assert out[i] == ref[:len(out[i])], i
        else:
            assert (out[i], finished.get(i)) == (ref, "length"), i
    st_ = engine.stats()
    assert st_["blocks_used"] == 0 and st_["running"] == 0 and st_["waiting"] == 0
    assert st_["blocks_free"] == st_["blocks_total"]  # cached prefix blocks count as free
