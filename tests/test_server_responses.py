"""OpenAI's Responses API on the real server, driven with the openai client's responses.create and
responses.stream (whose event accumulator checks the order of the events): each reply equals what
the chat route gives for the same messages, whole and streamed; previous_response_id, function
calls, structured output, logprobs, storage, background runs and bad requests; the prefix cache's
hits in usage."""
import json

import httpx
import jsonschema
import openai
import pytest

from test_server import RunningServer, disconnect_mid_stream, wait_idle

Q = "What is the capital of France?"
HELLO = "Say hello."  # SmolLM2 answers it in about 30 tokens
TOOLS = [{"type": "function", "name": "get_weather", "description": "The weather in a city",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                         "required": ["city"], "additionalProperties": False}}]
CHAT_TOOLS = [{"type": "function", "function": {k: v for k, v in t.items() if k != "type"}} for t in TOOLS]


class Client:
    """The openai client with the served model's id filled in."""

    def __init__(self, server):
        self.openai = server.client()
        self.model = self.openai.models.list().data[0].id

    def create(self, **kw):
        return self.openai.responses.create(model=self.model, **kw)

    def chat(self, messages, max_tokens=24, **kw):
        return self.openai.chat.completions.create(model=self.model, messages=messages, max_tokens=max_tokens,
                                                   temperature=0, **kw).choices[0]

    def stream(self, **kw):
        """responses.stream's final response and its events."""
        with self.openai.responses.stream(model=self.model, temperature=0, **kw) as s:
            events = list(s)
            return s.get_final_response(), events


@pytest.fixture(scope="module")
def client(server):
    return Client(server)


def test_responses_and_events_validate_against_the_openai_types(server, client):
    """Every event and the whole response as the client's own pydantic types accept them, strictly."""
    from pydantic import TypeAdapter
    from openai.types.responses import Response, ResponseStreamEvent
    body = {"model": client.model, "input": HELLO, "max_output_tokens": 40, "temperature": 0,
            "include": ["message.output_text.logprobs"], "top_logprobs": 1}
    whole = httpx.post(server.base + "/v1/responses", json=body, timeout=60).json()
    Response.model_validate(whole)
    r = httpx.post(server.base + "/v1/responses", json={**body, "stream": True}, timeout=60)
    adapter = TypeAdapter(ResponseStreamEvent)
    evs = [adapter.validate_python(json.loads(line[6:])) for line in r.text.splitlines() if line.startswith("data: ")]
    assert evs[-1].response.output_text == whole["output"][0]["content"][0]["text"]
    assert whole["usage"]["input_tokens_details"]["cache_write_tokens"] >= 0


def test_reply_equals_chat_whole_and_streamed(client):
    want = client.chat([{"role": "user", "content": HELLO}], max_tokens=300)
    assert want.finish_reason == "stop"  # (responses.stream's final response needs a completed one)
    r = client.create(input=HELLO, max_output_tokens=300, temperature=0)
    assert r.status == "completed" and r.output_text == want.message.content
    assert r.id.startswith("resp_") and [o.type for o in r.output] == ["message"]
    assert r.usage.output_tokens > 0 and r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens
    final, events = client.stream(input=HELLO, max_output_tokens=300)
    assert final.output_text == want.message.content and final.status == "completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == want.message.content
    assert final.usage.input_tokens == r.usage.input_tokens and final.usage.output_tokens == r.usage.output_tokens


def test_instructions_input_items_and_previous_response(client):
    """instructions become the system message; message items keep their roles (developer as
    system); previous_response_id continues from the stored input and output, without its
    instructions."""
    sys_msg = "Answer in one short sentence."
    first = client.create(instructions=sys_msg, max_output_tokens=24, temperature=0,
                                    input=[{"role": "user", "content": [{"type": "input_text", "text": Q}]}])
    want = client.chat([{"role": "system", "content": sys_msg}, {"role": "user", "content": Q}])
    assert first.output_text == want.message.content and first.instructions == sys_msg
    dev = client.create(max_output_tokens=24, temperature=0,
                                  input=[{"role": "developer", "content": sys_msg}, {"role": "user", "content": Q}])
    assert dev.output_text == first.output_text
    second = client.create(previous_response_id=first.id, input="And of Italy?",
                                     max_output_tokens=24, temperature=0)
    want2 = client.chat([{"role": "user", "content": Q}, {"role": "assistant", "content": first.output_text},
                          {"role": "user", "content": "And of Italy?"}])
    assert second.output_text == want2.message.content and second.previous_response_id == first.id


def test_max_output_tokens_makes_it_incomplete(client):
    r = client.create(input="Count from 1 to 100.", max_output_tokens=5, temperature=0)
    assert r.status == "incomplete" and r.incomplete_details.reason == "max_output_tokens"
    assert r.usage.output_tokens == 5 and r.output[0].status == "incomplete"
    events = list(client.create(input="Count from 1 to 100.", max_output_tokens=5,
                                          temperature=0, stream=True))
    assert events[-1].type == "response.incomplete" and events[-1].response.output_text == r.output_text


def test_function_call_and_its_output(client):
    r = client.create(input="What is the weather in Paris?", tools=TOOLS,
                                tool_choice="required", temperature=0)
    calls = [o for o in r.output if o.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather" and calls[0].status == "completed"
    assert r.parallel_tool_calls is False  # (the generic tool form's default: one call)
    jsonschema.validate(json.loads(calls[0].arguments), TOOLS[0]["parameters"])
    want = client.chat([{"role": "user", "content": "What is the weather in Paris?"}], max_tokens=None,
                tools=CHAT_TOOLS, tool_choice="required")
    assert calls[0].arguments == want.message.tool_calls[0].function.arguments
    final, events = client.stream(input="What is the weather in Paris?", tools=TOOLS,
                             tool_choice={"type": "function", "name": "get_weather"})
    fc = [o for o in final.output if o.type == "function_call"]
    assert [(c.name, c.arguments) for c in fc] == [("get_weather", calls[0].arguments)]
    assert "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta") == fc[0].arguments
    # The tool's result: continued from the stored call, or with the call written in the input.
    out = {"type": "function_call_output", "call_id": calls[0].call_id, "output": "22 C and sunny"}
    a = client.create(previous_response_id=r.id, input=[out], tools=TOOLS,
                                max_output_tokens=24, temperature=0)
    b = client.create(tools=TOOLS, max_output_tokens=24, temperature=0, input=[
        {"role": "user", "content": "What is the weather in Paris?"},
        {"type": "function_call", "call_id": calls[0].call_id, "name": "get_weather", "arguments": calls[0].arguments},
        out])
    want = client.chat([{"role": "user", "content": "What is the weather in Paris?"},
                         {"role": "assistant", "content": None, "tool_calls": [
                             {"id": calls[0].call_id, "type": "function",
                              "function": {"name": "get_weather", "arguments": calls[0].arguments}}]},
                         {"role": "tool", "tool_call_id": calls[0].call_id, "content": "22 C and sunny"}],
                tools=CHAT_TOOLS)
    assert a.output_text == b.output_text == (want.message.content or "")


def test_structured_output_and_logprobs(client):
    schema = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 20}},
              "required": ["city"], "additionalProperties": False}
    fmt = {"format": {"type": "json_schema", "name": "answer", "schema": schema, "strict": True}}
    r = client.create(input=Q, text=fmt, temperature=0, max_output_tokens=64)
    jsonschema.validate(json.loads(r.output_text), schema)
    final, _ = client.stream(input=Q, text=fmt, max_output_tokens=64)
    assert final.output_text == r.output_text
    lp = client.create(input=Q, max_output_tokens=8, temperature=0, top_logprobs=2,
                                 include=["message.output_text.logprobs"])
    want = client.chat([{"role": "user", "content": Q}], max_tokens=8, logprobs=True, top_logprobs=2)
    got = lp.output[0].content[0].logprobs
    assert [(x.token, round(x.logprob, 5)) for x in got] == [(x.token, round(x.logprob, 5)) for x in want.logprobs.content]
    assert all(len(x.top_logprobs) == 2 for x in got)
    events = list(client.create(input=Q, max_output_tokens=8, temperature=0, top_logprobs=2, stream=True,
                                include=["message.output_text.logprobs"]))
    assert [x.token for x in events[-1].response.output[0].content[0].logprobs] == [x.token for x in got]
    assert [x.token for e in events if e.type == "response.output_text.delta" for x in e.logprobs] == [
        x.token for x in got]


def test_input_items_list_pages(client):
    """GET /v1/responses/{id}/input_items through the client's pager: the input as given (a string
    as a user message, text as parts), each with an id; newest first unless order asc."""
    inp = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": [{"type": "output_text", "text": "Hello"}]},
           {"role": "user", "content": "Bye"}]
    r = client.create(input=inp, max_output_tokens=2, temperature=0)
    asc = list(client.openai.responses.input_items.list(r.id, order="asc", limit=1))  # three pages
    assert [(i.role, i.content[0].text) for i in asc] == [("user", "Hi"), ("assistant", "Hello"), ("user", "Bye")]
    assert asc[0].content[0].type == "input_text" and asc[1].content[0].type == "output_text"
    desc = client.openai.responses.input_items.list(r.id)
    assert [i.id for i in desc.data] == [i.id for i in asc][::-1] and not desc.has_more
    one = client.create(input="Hey", max_output_tokens=2, temperature=0)
    (item,) = client.openai.responses.input_items.list(one.id).data
    assert (item.type, item.role, item.content[0].text) == ("message", "user", "Hey")
    with pytest.raises(openai.BadRequestError):
        client.openai.responses.input_items.list(one.id, limit=0)


def test_store_retrieve_delete(client, server):
    r = client.create(input="Hi", max_output_tokens=4, temperature=0, metadata={"k": "v"})
    got = client.openai.responses.retrieve(r.id)
    assert got.output_text == r.output_text and got.metadata == {"k": "v"}
    client.openai.responses.delete(r.id)
    with pytest.raises(openai.NotFoundError):
        client.openai.responses.retrieve(r.id)
    with pytest.raises(openai.NotFoundError):
        client.create(input="Hi", previous_response_id=r.id)
    unstored = client.create(input="Hi", max_output_tokens=4, store=False)
    with pytest.raises(openai.NotFoundError):
        client.openai.responses.retrieve(unstored.id)
    wait_idle(server)


def test_background_poll_and_cancel(client, server):
    """background: answered queued at once, then polled with responses.retrieve until whole: the
    reply equals the same request's in the foreground. A long one cancelled (responses.cancel) is
    cancelled and stays so, and the KV pool comes back to idle; cancelling a finished or a
    foreground response is a 400."""
    import time
    want = client.create(input=HELLO, max_output_tokens=12, temperature=0)
    r = client.create(input=HELLO, max_output_tokens=12, temperature=0, background=True)
    assert r.background and r.status in ("queued", "in_progress") and r.output == []
    deadline = time.time() + 60
    while r.status in ("queued", "in_progress") and time.time() < deadline:
        time.sleep(0.05)
        r = client.openai.responses.retrieve(r.id)
    assert r.status == want.status == "incomplete" and r.output_text == want.output_text and r.background
    assert r.usage.output_tokens == want.usage.output_tokens == 12
    for rid in (r.id, want.id):
        with pytest.raises(openai.BadRequestError):
            client.openai.responses.cancel(rid)
    idle = wait_idle(server)
    long = client.create(input="Tell a long story.", max_output_tokens=500, temperature=0, background=True,
                         extra_body={"ignore_eos": True})
    time.sleep(0.5)  # under way
    c = client.openai.responses.cancel(long.id)
    assert c.status == "cancelled" and c.id == long.id and c.background
    assert wait_idle(server)["llmasos_kv_blocks_free"] == idle["llmasos_kv_blocks_free"]
    assert client.openai.responses.retrieve(long.id).status == "cancelled"


def test_truncation_auto_drops_the_oldest_items(client):
    """truncation 'auto': a conversation longer than the context (1024 tokens here) loses its
    oldest items until it fits; the reply equals the one to the shortest tail that fits, sent
    without truncation; 'disabled' (the default) is the usual 400."""
    filler = lambda i: " ".join(f"item{i}x{j}" for j in range(120))
    items = []
    for i in range(3):
        items += [{"role": "user", "content": filler(i)}, {"role": "assistant", "content": "Noted."}]
    items.append({"role": "user", "content": HELLO})
    with pytest.raises(openai.BadRequestError):
        client.create(input=items, max_output_tokens=12, temperature=0)
    got = client.create(input=items, max_output_tokens=12, temperature=0, truncation="auto")
    assert got.truncation == "auto" and got.usage.input_tokens + 12 <= 1024
    for k in range(1, len(items)):
        try:
            want = client.create(input=items[k:], max_output_tokens=12, temperature=0)
        except openai.BadRequestError:
            continue
        break
    assert 1 < k < len(items) - 1, k
    assert got.output_text == want.output_text and got.usage.input_tokens == want.usage.input_tokens


def test_deeply_nested_bodies_are_400(server):
    for path in ("/v1/responses", "/v1/chat/completions", "/completion"):
        for depth in (300, 20000):
            r = httpx.post(server.base + path, content='{"input": ' + "[" * depth + "]" * depth + "}",
                           headers={"content-type": "application/json"}, timeout=30)
            assert r.status_code == 400 and "nests more than" in r.json()["error"]["message"], (path, depth)
    # JSON text inside the body (a call's arguments) too.
    deep = "[" * 20000 + "]" * 20000
    call = {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "get_weather", "arguments": deep}}]}
    r = httpx.post(server.base + "/v1/chat/completions", timeout=30, json={
        "messages": [{"role": "user", "content": "hi"}, call], "max_tokens": 2})
    assert r.status_code == 400 and r.json()["error"]["param"] == "messages"
    r = httpx.post(server.base + "/v1/responses", timeout=30, json={"tools": TOOLS, "max_output_tokens": 2, "input": [
        {"type": "function_call", "call_id": "c", "name": "get_weather", "arguments": deep}]})
    assert r.status_code == 400 and r.json()["error"]["param"] == "input"


@pytest.mark.parametrize("body,param", [
    ({"input": "x", "temprature": 0.5}, "temprature"),
    ({}, "input"),
    ({"input": []}, "input"),
    ({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "http://x"}]}]}, "input"),
    ({"input": [{"type": "item_reference", "id": "x"}]}, "input"),
    ({"input": "x", "tools": [{"type": "web_search"}]}, "tools"),
    ({"input": "x", "tool_choice": {"type": "file_search"}}, "tool_choice"),
    ({"input": "x", "reasoning": {"effort": "high"}}, "reasoning"),
    ({"input": "x", "background": True, "store": False}, "background"),
    ({"input": "x", "background": True, "stream": True}, "background"),
    ({"input": "x", "background": "yes"}, "background"),
    ({"input": "x", "truncation": "middle"}, "truncation"),
    ({"input": "x " * 2000, "truncation": "auto"}, "input"),
    ({"input": "x", "include": ["reasoning.encrypted_content"]}, "include"),
    ({"input": "x", "text": {"format": {"type": "json_schema"}}}, "text"),
    ({"input": "x", "max_output_tokens": 0}, "max_output_tokens"),
    ({"input": "x", "max_output_tokens": 10 ** 6}, "max_output_tokens"),
    ({"input": "x " * 2000}, "input"),
    ({"input": "x", "text": {"format": {"type": "json_schema", "schema": {"type": "nope"}}}}, "text"),
    ({"input": "x", "text": {"format": {"type": "json_schema", "name": 5, "schema": {}}}}, "text"),
    ({"input": "x", "include": ""}, "include"),
    ({"input": "x", "user": {"a": 1}}, "user"),
    ({"input": "x", "parallel_tool_calls": "yes"}, "parallel_tool_calls"),
    ({"input": "x", "reasoning": {"effrot": None}}, "reasoning"),
    ({"input": "x", "top_logprobs": 50}, "top_logprobs"),
    ({"input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": "{not json"}]}, "input"),
    ({"input": [{"role": "user", "content": [{"type": "input_text", "text": 5}]}]}, "input"),
    ({"input": "x", "temperature": -1}, "temperature"),
    ({"input": "x", "model": "other"}, "model"),
    ({"input": "x", "metadata": {"k": 1}}, "metadata"),
    ({"input": "x", "top_logprobs": "2"}, "top_logprobs"),
])
def test_bad_requests_are_4xx(server, body, param):
    r = httpx.post(server.base + "/v1/responses", json=body, timeout=30)
    assert 400 <= r.status_code < 500, r.text
    assert r.json()["error"]["param"] == param


def test_cached_tokens_in_usage(client):
    """A second request that shares a long prefix finds it in the prefix cache; chat and
    Responses report the cached prompt tokens (whole 16-token blocks) in their usage."""
    long = "Here is a list of fruits: " + ", ".join(f"fruit number {i}" for i in range(60)) + "."
    first = client.create(input=long + " Which is first?", max_output_tokens=2, temperature=0)
    assert first.usage.input_tokens_details.cached_tokens <= 32  # the template's system prompt, at most
    again = client.create(input=long + " Which is last?", max_output_tokens=2, temperature=0)
    assert again.usage.input_tokens_details.cached_tokens >= first.usage.input_tokens - 32
    assert again.usage.input_tokens_details.cached_tokens % 16 == 0
    c = client.openai.chat.completions.create(model=client.model, messages=[{"role": "user", "content": long + " Which is third?"}],
                                       max_tokens=2, temperature=0)
    assert c.usage.prompt_tokens_details.cached_tokens >= c.usage.prompt_tokens - 32


def test_disconnect_mid_stream_frees_blocks(server):
    disconnect_mid_stream(server, "/v1/responses", {"input": "Tell a long story.", "max_output_tokens": 500},
                          after=12)


def test_api_key_guards_responses(smollm2_gguf):
    s = RunningServer(smollm2_gguf, "--api-key", "sekret")
    try:
        model = s.client("sekret").models.list().data[0].id
        with pytest.raises(openai.AuthenticationError):
            s.client().responses.create(model=model, input="Hi", max_output_tokens=2)
        r = s.client("sekret").responses.create(model=model, input="Hi", max_output_tokens=2)
        assert r.status in ("completed", "incomplete")
        assert httpx.get(s.base + f"/v1/responses/{r.id}", timeout=10).status_code == 401
    finally:
        s.stop()
