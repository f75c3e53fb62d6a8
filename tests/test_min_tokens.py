"""vLLM's min_tokens: no end-of-generation token, stop_token_ids token or stop string ends the
output before it has that many tokens; the same on the engine, the session and the server."""
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


@pytest.mark.parametrize("bad", [-1, 1.5, True, 200])
def test_bad_min_tokens(llm, bad):
    with pytest.raises(ValueError, match="min_tokens"):
        llm.generate("Hi", SamplingParams(max_tokens=100, min_tokens=bad))


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
        for body, param in (({"min_tokens": 20}, "min_tokens"), ({"min_tokens": -1}, "min_tokens"),
                            ({"min_tokens": "5"}, "min_tokens")):
            with pytest.raises(openai.BadRequestError) as e:
                c.completions.create(model=model, prompt="Hi", max_tokens=10, extra_body=body)
            assert e.value.body["param"] == param
    finally:
        s.stop()
