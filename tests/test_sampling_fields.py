"""Sampling fields other servers have: vLLM's min_tokens (no end-of-generation token,
stop_token_ids token or stop string ends the output before it has that many tokens),
include_stop_str_in_output and allowed_token_ids, llama.cpp's repeat_penalty over the last
repeat_last_n tokens; on the engine, the session and the server; and the other servers' sampler
fields this one lacks, refused unless neutral."""
import numpy as np
import pytest

from llmasos import LLM, SamplingParams
from test_server import RunningServer  # noqa: F401  (the server fixture's class)

MSGS = [{"role": "user", "content": "Say hi."}]


@pytest.fixture(scope="module")
def llm(smollm2_gguf):
    with LLM.from_pretrained(smollm2_gguf, n_ctx=1024, threads=2) as m:
        yield m


def test_min_tokens_holds_back_the_end(llm):
    ids = llm.chat_prompt_ids(MSGS)
    free = llm.generate([ids], SamplingParams(max_tokens=80))[0]
    assert free.finish_reason == "stop" and len(free.token_ids) < 30  # the reply ends early by itself
    for mt in (len(free.token_ids) + 1, 40):
        p = SamplingParams(max_tokens=80, min_tokens=mt)
        out = llm.generate([ids], p)[0]
        assert len(out.token_ids) >= mt and out.text.startswith(free.text)
        assert llm.chat(MSGS, p).text == out.text  # the session (chat, stream) agrees
        assert "".join(llm.stream(ids, p)) == out.text
    # min_tokens == max_tokens: exactly that many, seeded sampling too.
    p = SamplingParams(max_tokens=12, min_tokens=12, temperature=1.0, seed=4)
    outs = llm.generate([ids, ids], p)
    assert [len(o.token_ids) for o in outs] == [12, 12] and outs[0].text == outs[1].text
    assert all(o.finish_reason == "length" for o in outs)


def test_min_tokens_holds_back_stop_ids_and_strings(llm):
    first = llm.generate("One, two, three,", SamplingParams(max_tokens=30, stop=","))[0]
    assert first.finish_reason == "stop" and first.stop_reason == ","
    later = llm.generate("One, two, three,", SamplingParams(max_tokens=30, stop=",", min_tokens=5))[0]
    assert later.text.startswith(first.text + ",") and len(later.token_ids) >= 5
    assert later.stop_reason == ","
    tok = llm.generate("One, two, three,", SamplingParams(max_tokens=30))[0].token_ids[1]
    held = llm.generate("One, two, three,", SamplingParams(max_tokens=30, stop_token_ids=[tok], min_tokens=4))[0]
    assert tok not in held.token_ids[:3]


def test_min_tokens_looks_for_stop_strings_only_in_new_text():
    """As vLLM: once min_tokens is reached, a stop string counts only where it ends in new text,
    not one that lay whole in the text before (held back as the start of a longer one)."""
    from llmasos.stop_strings import StopMatcher
    m = StopMatcher(["abc", "b"])
    assert m.feed("ab", can_stop=False) == ("", False) and m.feed("x") == ("abx", False)
    m = StopMatcher(["abc", "b"])
    m.feed("ab", can_stop=False)
    assert m.feed("c") == ("", True) and m.matched == "abc"
    m = StopMatcher(["abc", "b"])
    m.feed("a", can_stop=False)
    assert m.feed("b") == ("a", True) and m.matched == "b"


def test_nothing_left_to_draw_draws_nothing(llm):
    """allowed_token_ids that only min_tokens holds back: no masked token is drawn."""
    eos = llm._core().eos_id
    out = llm.generate("Hi", SamplingParams(max_tokens=5, min_tokens=3, allowed_token_ids=[eos]))[0]
    assert out.token_ids == [] and out.finish_reason == "length"


@pytest.mark.parametrize("bad", [-1, 1.5, True, 200])
def test_bad_min_tokens(llm, bad):
    with pytest.raises(ValueError, match="min_tokens"):
        llm.generate("Hi", SamplingParams(max_tokens=100, min_tokens=bad))


def test_include_stop_str_in_output(llm):
    p = SamplingParams(max_tokens=30, stop=[", five", "six"], include_stop_str_in_output=True)
    out = llm.generate("One, two, three,", p)[0]
    assert out.text.endswith(", five") and out.stop_reason == ", five"
    assert "".join(llm.stream("One, two, three,", p)) == out.text
    cut = llm.generate("One, two, three,", SamplingParams(max_tokens=30, stop=[", five", "six"]))[0]
    assert cut.text + ", five" == out.text


def test_allowed_token_ids(llm):
    ids = llm.tokenize(" yes no maybe", add_bos=False)
    for p in (SamplingParams(max_tokens=6, allowed_token_ids=ids),
              SamplingParams(max_tokens=6, allowed_token_ids=ids, temperature=1.0, seed=2)):
        out = llm.generate("Answer:", p)[0]
        assert out.token_ids and set(out.token_ids) <= set(ids)
        assert llm.chat([{"role": "user", "content": "Answer:"}], p).token_ids[0] in ids
    with pytest.raises(ValueError, match="allowed_token_ids"):
        llm.generate("Hi", SamplingParams(allowed_token_ids=[]))
    with pytest.raises(Exception, match="allowed_token_ids token id"):
        llm.generate("Hi", SamplingParams(allowed_token_ids=[10 ** 8]))


@pytest.mark.parametrize("last_n", [0, 1, 3, 8])
def test_repetition_window_matches_a_reference(llm, last_n):
    """Greedy with repetition_penalty over the last n tokens of prompt + output (all for 0)
    equals an argmax over the model's logits with that penalty applied by hand."""
    prompt = llm.tokenize("The cat sat on the mat. The cat sat on the")
    pen = 1.8
    out = llm.generate([prompt], SamplingParams(max_tokens=8, ignore_eos=True, repetition_penalty=pen,
                                                repetition_last_n=last_n))[0].token_ids
    ids = list(prompt)
    for tok in out:
        row = llm.logits(ids)[-1].astype(np.float32)
        window = ids[-last_n:] if last_n else ids
        for t in set(window):
            row[t] = row[t] / np.float32(pen) if row[t] > 0 else row[t] * np.float32(pen)
        assert int(np.argmax(row)) == tok
        ids.append(tok)


def test_server_min_tokens(smollm2_gguf):
    import openai
    s = RunningServer(smollm2_gguf)
    try:
        c = s.client()
        model = c.models.list().data[0].id
        free = c.chat.completions.create(model=model, messages=MSGS, max_tokens=80, temperature=0)
        held = c.chat.completions.create(model=model, messages=MSGS, max_tokens=80, temperature=0,
                                         extra_body={"min_tokens": 40})
        assert held.usage.completion_tokens >= 40 > free.usage.completion_tokens
        assert held.choices[0].message.content.startswith(free.choices[0].message.content)
        r = c.completions.create(model=model, prompt="One, two, three,", max_tokens=20, temperature=0,
                                 stop=[", five"], extra_body={"include_stop_str_in_output": True})
        assert r.choices[0].text.endswith(", five")
        llm_ref = LLM.from_pretrained(smollm2_gguf, n_ctx=1024, threads=2)
        ids = llm_ref.tokenize(" yes no", add_bos=False)
        r = c.completions.create(model=model, prompt="Answer:", max_tokens=3, temperature=0,
                                 extra_body={"allowed_token_ids": ids})
        assert r.choices[0].text.replace(" yes", "").replace(" no", "") == ""
        # llama.cpp's repeat_penalty (over the last repeat_last_n, 64 by default) is the engine's
        # repetition penalty over that window.
        loop = "The cat sat on the mat. The cat sat on the"
        for extra, last_n in (({"repeat_penalty": 1.8}, 64), ({"repeat_penalty": 1.8, "repeat_last_n": 3}, 3),
                              ({"repeat_penalty": 1.8, "repeat_last_n": -1}, 0)):
            r = c.completions.create(model=model, prompt=loop, max_tokens=8, temperature=0, extra_body=extra)
            want = llm_ref.generate(loop, SamplingParams(max_tokens=8, repetition_penalty=1.8,
                                                         repetition_last_n=last_n))[0].text
            assert r.choices[0].text == want, extra
        for body, param in (({"min_tokens": 20}, "min_tokens"), ({"min_tokens": -1}, "min_tokens"),
                            ({"min_tokens": "5"}, "min_tokens"), ({"allowed_token_ids": []}, "allowed_token_ids"),
                            ({"allowed_token_ids": [10 ** 8]}, "allowed_token_ids"),
                            ({"repeat_penalty": 1.1, "repetition_penalty": 1.1}, "repeat_penalty"),
                            ({"mirostat_mode": 2}, "mirostat_mode"), ({"typical_p": 0.5}, "typical_p"),
                            ({"skip_special_tokens": False}, "skip_special_tokens"),
                            ({"use_beam_search": True}, "use_beam_search"), ({"bad_words": ["Paris"]}, "bad_words"),
                            ({"truncate_prompt_tokens": 5}, "truncate_prompt_tokens"), ({"n_probs": 3}, "n_probs"),
                            ({"repeat_penalty": 1.2, "penalize_nl": False}, "penalize_nl")):
            with pytest.raises(openai.BadRequestError) as e:
                c.completions.create(model=model, prompt="Hi", max_tokens=10, extra_body=body)
            assert e.value.body["param"] == param, body
        # Their neutral values change nothing and pass (llama-cpp-python's client sends them).
        r = c.completions.create(model=model, prompt="Hi", max_tokens=2, extra_body={
            "mirostat_mode": 0, "mirostat": False, "typical_p": 1.0, "tfs_z": 1.0, "skip_special_tokens": True,
            "penalize_nl": False, "min_keep": 0})
        assert r.choices[0].text
    finally:
        s.stop()
