"""Property tests of the server's request validation, without a server: for any JSON body,
sampling_params() either raises RequestError or returns parameters the engine accepts
(SamplingParams.to_core), and chat messages either raise ChatTemplateError or come out as text.
A body that slips through both would reach the engine and end as a 500 (see test_server.py for
the same over HTTP). Hypothesis runs derandomized, so a failure reproduces."""
import math

import pytest
from hypothesis import given, settings, strategies as st

from llmasos.chat_template import ChatTemplateError, validate_messages
from llmasos.server_requests import RequestError, sampling_params

EDGES = [0, 1, -1, 2, 20, 21, 2**31 - 1, 2**31, 2**63 - 1, 2**63, 2**64 - 1, 2**64, -2**63 - 1, 10**30]
number = st.one_of(st.sampled_from(EDGES), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
                   st.sampled_from([0.0, -0.0, 5e-324, 1e308, 0.5, 2.0000001]))
scalar = st.one_of(st.none(), st.booleans(), number, st.text(max_size=8))
anything = st.recursive(scalar, lambda c: st.one_of(st.lists(c, max_size=3),
                                                    st.dictionaries(st.text(max_size=6), c, max_size=3)),
                        max_leaves=8)
# Keys that look like token ids to str.isdigit() without being ASCII digits, and ASCII ones.
id_text = st.text(alphabet="0123456789\u00b2\u00b3\u0663\u06f4\u09e6\uff11", max_size=25)
FIELDS = {
    "max_tokens": st.one_of(st.integers(-2, 5000), anything), "max_completion_tokens": anything,
    "n": st.one_of(st.integers(-1, 10), anything), "best_of": st.one_of(st.integers(-1, 10), anything),
    "temperature": number, "top_p": number, "top_k": number, "min_p": number,
    "presence_penalty": number, "frequency_penalty": number, "repetition_penalty": number,
    "seed": st.one_of(number, anything), "stop": st.one_of(st.text(max_size=4), st.lists(st.text(max_size=3), max_size=18), anything),
    "stop_token_ids": st.one_of(st.lists(number, max_size=4), anything),
    "ignore_eos": st.one_of(st.booleans(), anything),
    "logit_bias": st.one_of(st.dictionaries(st.one_of(id_text, st.text(max_size=4)), number, max_size=4), anything),
    "logprobs": st.one_of(st.booleans(), st.integers(-2, 25), anything),
    "top_logprobs": st.one_of(st.integers(-2, 25), anything), "stream": st.one_of(st.booleans(), anything),
    "suffix": anything, "tools": anything, "response_format": anything,
    "min_tokens": st.one_of(st.integers(-2, 1100), anything), "include_stop_str_in_output": anything,
    "allowed_token_ids": st.one_of(st.lists(number, max_size=4), anything),
    "repeat_penalty": number, "repeat_last_n": st.one_of(st.integers(-3, 100), anything),
    "grammar": st.one_of(st.sampled_from(['root ::= "a"', "root ::= x", "", 'root ::= [a-z]+']), anything),
    "guided_grammar": anything, "mirostat_mode": anything, "typical_p": anything, "skip_special_tokens": anything,
}
# One to three fields set to anything, the rest absent: a bad value is not hidden behind an
# earlier field's rejection.
bodies = st.dictionaries(st.sampled_from(sorted(FIELDS)), st.none(), min_size=1, max_size=3).flatmap(
    lambda keys: st.fixed_dictionaries({k: FIELDS[k] for k in keys}))


@settings(max_examples=1500, derandomize=True, deadline=None, database=None)
@given(body=bodies, chat=st.booleans())
def test_sampling_params_accept_or_reject_clearly(body, chat):
    try:
        params, n, stream, max_tokens = sampling_params(body, max_tokens_default=16, n_ctx=1024, max_n=8,
                                                        chat=chat)
    except RequestError as e:
        assert e.status == 400 and e.message
        return
    assert 1 <= n <= 8 and isinstance(stream, bool)
    assert max_tokens is None or 1 <= max_tokens <= 1024
    params.max_tokens = max_tokens or 16
    if params.min_tokens > params.max_tokens:
        return  # the server's _fit answers 400 once it knows the prompt's room (chat's default)
    params.to_core()  # what the engine runs; any error here would surface as a 500
    for v in (params.temperature, params.top_p, params.min_p):
        assert v is None or math.isfinite(v)


content = st.one_of(st.text(max_size=8), st.lists(st.one_of(
    st.fixed_dictionaries({"type": st.sampled_from(["text", "image_url"]), "text": anything}), anything), max_size=3), anything)
messages = st.one_of(st.lists(st.one_of(st.fixed_dictionaries({"role": st.one_of(st.text(max_size=5), anything),
                                                               "content": content}), anything), max_size=3), anything)


@settings(max_examples=800, derandomize=True, deadline=None, database=None)
@given(messages)
def test_chat_messages_accept_or_reject_clearly(msgs):
    try:
        out = validate_messages(msgs)
    except ChatTemplateError as e:
        assert str(e)
        return
    assert out and all(isinstance(m["role"], str) and isinstance(m["content"], str) for m in out)
