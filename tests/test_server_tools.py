"""Function calling on /v1/chat/completions (server_tools.py) through the openai client: a named
tool, "required" among several, "auto", "none", streamed calls and answers, a multi-turn
exchange with a tool result, and the 400s; plus the stream parser on replies fed piece by piece."""
import json

import jsonschema
import openai
import pytest

from hypothesis import given, settings, strategies as st

from llmasos import chat_template
from llmasos.server_requests import RequestError, checked_schema
from llmasos.server_tools import ToolRequest, ToolStream, reply_schema
from test_server import RunningServer

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The current weather in a city.",
    "parameters": {"type": "object", "additionalProperties": False, "required": ["city", "unit"],
                   "properties": {"city": {"type": "string", "maxLength": 30},
                                  "unit": {"enum": ["celsius", "fahrenheit"]}}}}}
TIME = {"type": "function", "function": {
    "name": "get_time", "description": "The local time in a time zone.",
    "parameters": {"type": "object", "properties": {"zone": {"$ref": "#/$defs/Zone"}}, "required": ["zone"],
                   "$defs": {"Zone": {"type": "string", "pattern": "^[A-Z][a-z]+/[A-Z][a-z]+$"}}}}}
PARAMS = {t["function"]["name"]: t["function"]["parameters"] for t in (WEATHER, TIME)}
MSGS = [{"role": "user", "content": "What is the weather like in Paris?"}]


# ---- the stream parser -----------------------------------------------------------------------------

def feed_all(text, step=1):
    ts, deltas = ToolStream(), []
    for i in range(0, len(text), step):
        deltas += ts.feed(text[i:i + step], i + step >= len(text))
    return ts, deltas


@pytest.mark.parametrize("answer", ["plain", 'with "quotes" and \\ slashes', "caf\u00e9 \U0001F600 \u4e2d", "", "a\nb\t\u0001"])
@pytest.mark.parametrize("step", [1, 2, 5])
def test_stream_of_an_answer_is_its_text(answer, step):
    ts, deltas = feed_all(json.dumps({"response": answer}, separators=(",", ":")), step)
    assert ts.kind == "response"
    assert "".join(d["content"] for d in deltas) == answer
    assert all(d["content"] for d in deltas)


@pytest.mark.parametrize("step", [1, 3, 7])
def test_stream_of_a_call_is_its_name_and_arguments(step):
    args = {"city": "S\u00e3o Paulo", "nested": {"a": [1, {"b": "}}"}]}}
    text = json.dumps({"tool_call": {"name": "get_weather", "arguments": args}}, separators=(",", ":"), ensure_ascii=False)
    ts, deltas = feed_all(text, step)
    assert ts.kind == "call"
    head = deltas[0]["tool_calls"][0]
    assert head["function"] == {"name": "get_weather", "arguments": ""} and head["id"].startswith("call_")
    assert json.loads("".join(d["tool_calls"][0]["function"]["arguments"] for d in deltas[1:])) == args


@pytest.mark.parametrize("step", [1, 4, 9])
def test_stream_of_parallel_calls(step):
    calls = [{"name": "get_weather", "arguments": {"city": "Paris", "note": "a}b\\\"c"}},
             {"name": "get_time", "arguments": {"zone": "Europe/Paris", "n": [1, {"x": []}]}},
             {"name": "f", "arguments": "scalar"}]
    text = json.dumps({"tool_calls": calls}, separators=(",", ":"), ensure_ascii=False)
    ts, deltas = feed_all(text, step)
    got = {}
    for d in deltas:
        for tc in d["tool_calls"]:
            if "id" in tc:
                got[tc["index"]] = [tc["function"]["name"], ""]
            got[tc["index"]][1] += tc["function"].get("arguments", "")
    assert [(n, json.loads(a)) for n, a in (got[i] for i in sorted(got))] == [(c["name"], c["arguments"]) for c in calls]
    from llmasos.server_tools import ToolRequest
    msg, reason = ToolRequest.message(text, "stop")
    assert reason == "tool_calls" and [c["function"]["name"] for c in msg["tool_calls"]] == ["get_weather", "get_time", "f"]
    assert [json.loads(c["function"]["arguments"]) for c in msg["tool_calls"]] == [c["arguments"] for c in calls]


def test_a_reply_cut_short_reads_as_far_as_it_goes():
    from llmasos.server_tools import ToolRequest
    msg, reason = ToolRequest.message('{"response":"Hello, wor', "length")
    assert msg == {"role": "assistant", "content": "Hello, wor"} and reason == "length"
    msg, reason = ToolRequest.message('{"tool_call":{"name":"get_weather","arguments":{"city":"Pa', "length")
    assert msg["content"] is None and reason == "length"
    assert msg["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city":"Pa'}
    msg, _ = ToolRequest.message('{"tool_c', "length")
    assert msg == {"role": "assistant", "content": '{"tool_c'}
    msg, reason = ToolRequest.message('{"tool_call":{"name":"f","arguments":{"a":', "stop")  # a stop string cut it
    assert reason == "stop" and msg["tool_calls"][0]["function"]["arguments"] == '{"a":'
    ts = ToolStream()
    assert ts.feed('{"tool_call":{"name":"f","arguments":{"a":', True) and not ts.complete()


def test_reply_schema_moves_definitions_to_its_root():
    s = reply_schema([{"name": "get_time", "description": "", "parameters": PARAMS["get_time"]}], "required", None)
    assert "Zone" in s["$defs"] and "$defs" not in s["properties"]["tool_call"]["properties"]["arguments"]
    jsonschema.validate({"tool_call": {"name": "get_time", "arguments": {"zone": "Europe/Paris"}}}, s)


_KEYS = ["type", "properties", "$defs", "definitions", "required", "name", "arguments", "function", "id", "role",
         "content", "tool_calls", "tool_call_id"]
_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.text(max_size=4),
              st.sampled_from(["function", "f", "assistant", "tool", "user", '{"a":1}', "object", "string"])),
    lambda ch: st.one_of(st.lists(ch, max_size=3), st.dictionaries(st.sampled_from(_KEYS), ch, max_size=4)), max_leaves=10)


@settings(max_examples=300, derandomize=True, deadline=None, database=None)
@given(params=st.dictionaries(st.sampled_from(_KEYS), _VALUES, max_size=4),
       choice=st.one_of(st.sampled_from(["auto", "required", "none"]), _VALUES),
       msgs=st.lists(st.one_of(
           st.dictionaries(st.sampled_from(["role", "content", "tool_calls", "tool_call_id", "name"]), _VALUES, max_size=4),
           st.fixed_dictionaries({"role": st.just("assistant"), "tool_calls": st.lists(st.fixed_dictionaries({
               "id": _VALUES, "function": st.fixed_dictionaries({
                   "name": _VALUES, "arguments": st.sampled_from(["{}", '{"a": 1}', "[1]", "x"])})}), max_size=2)}),
           st.fixed_dictionaries({"role": st.just("tool"), "tool_call_id": _VALUES, "content": _VALUES})), max_size=3))
def test_odd_tools_and_histories_are_400s(params, choice, msgs):
    """Whatever the tools' parameters, tool_choice and the messages hold, the request is taken or
    refused with a RequestError (a 400), never another exception (a 500)."""
    body = {"tools": [{"type": "function", "function": {"name": "f", "parameters": params}},
                      {"type": "function", "function": {"name": "g"}}],
            "tool_choice": choice, "messages": [{"role": "user", "content": "hi"}] + msgs}
    try:
        t = ToolRequest(body)
        checked_schema(t.schema, "tools")
        chat_template.validate_messages(t.messages(body["messages"]))
    except (RequestError, chat_template.ChatTemplateError):
        pass


# ---- through the server ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def server(smollm2_gguf):
    s = RunningServer(smollm2_gguf)
    s.model = s.client().models.list().data[0].id
    yield s
    s.stop()


def check_call(call, names=("get_weather", "get_time")):
    assert call.type == "function" and call.id.startswith("call_") and call.function.name in names
    jsonschema.validate(json.loads(call.function.arguments), PARAMS[call.function.name])


def test_named_tool_is_called_with_valid_arguments(server):
    c = server.client()
    r = c.chat.completions.create(model=server.model, messages=MSGS, tools=[WEATHER, TIME], temperature=0, max_tokens=80,
                                  tool_choice={"type": "function", "function": {"name": "get_weather"}},
                                  response_format={"type": "text"})  # no constraint: taken beside tools
    ch = r.choices[0]
    assert ch.finish_reason == "tool_calls" and ch.message.content is None and len(ch.message.tool_calls) == 1
    check_call(ch.message.tool_calls[0], ("get_weather",))
    # Streamed: the same call, its arguments in pieces.
    chunks = list(c.chat.completions.create(model=server.model, messages=MSGS, tools=[WEATHER, TIME], temperature=0,
                                            max_tokens=80, stream=True,
                                            tool_choice={"type": "function", "function": {"name": "get_weather"}}))
    calls = [tc for ch_ in chunks if ch_.choices for tc in (ch_.choices[0].delta.tool_calls or [])]
    assert calls[0].function.name == "get_weather" and calls[0].id.startswith("call_")
    assert "".join(tc.function.arguments or "" for tc in calls) == ch.message.tool_calls[0].function.arguments
    assert [ch_.choices[0].finish_reason for ch_ in chunks if ch_.choices][-1] == "tool_calls"


def test_required_and_auto(server):
    c = server.client()
    for seed in (1, 2, 3):
        r = c.chat.completions.create(model=server.model, messages=MSGS, tools=[WEATHER, TIME], tool_choice="required",
                                      temperature=1.0, seed=seed, max_tokens=80)
        assert r.choices[0].finish_reason == "tool_calls"
        check_call(r.choices[0].message.tool_calls[0])
    kinds = set()
    for seed in range(4):
        r = c.chat.completions.create(model=server.model, messages=MSGS, tools=[WEATHER, TIME], temperature=1.0, seed=seed,
                                      max_tokens=120)
        ch = r.choices[0]
        if ch.finish_reason == "tool_calls":
            check_call(ch.message.tool_calls[0])
            kinds.add("call")
        else:
            assert ch.message.tool_calls is None and isinstance(ch.message.content, str)
            kinds.add("answer")
    assert kinds


def test_parallel_tool_calls(server):
    c = server.client()
    msgs = [{"role": "user", "content": "What is the weather in Paris and in Rome?"}]
    for stream in (False, True):
        kw = dict(model=server.model, messages=msgs, tools=[WEATHER, TIME], tool_choice="required", temperature=0,
                  max_tokens=400, parallel_tool_calls=True)
        if not stream:
            ch = c.chat.completions.create(**kw).choices[0]
            assert ch.finish_reason == "tool_calls" and 1 <= len(ch.message.tool_calls) <= 8
            for call in ch.message.tool_calls:
                check_call(call)
            whole = [(t.function.name, t.function.arguments) for t in ch.message.tool_calls]
        else:
            got = {}
            for chunk in c.chat.completions.create(stream=True, **kw):
                for tc in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
                    if tc.id:
                        got[tc.index] = [tc.function.name, ""]
                    got[tc.index][1] += tc.function.arguments or ""
            assert [tuple(got[i]) for i in sorted(got)] == whole
    history = msgs + [{"role": "assistant", "content": None, "tool_calls": [
        {"id": f"c{i}", "type": "function", "function": {"name": "get_weather", "arguments": json.dumps(
            {"city": city, "unit": "celsius"})}} for i, city in enumerate(("Paris", "Rome"))]},
        {"role": "tool", "tool_call_id": "c0", "content": "18C"}, {"role": "tool", "tool_call_id": "c1", "content": "24C"}]
    r = c.chat.completions.create(model=server.model, messages=history, tools=[WEATHER], parallel_tool_calls=True,
                                  temperature=0, max_tokens=40)
    assert r.choices[0].finish_reason in ("stop", "length", "tool_calls")


def test_many_tools(server):
    """More tools than parses the automaton follows side by side: the call switches on the name."""
    tools = [{"type": "function", "function": {"name": f"t_{i}", "parameters": {
        "type": "object", "required": ["n"], "properties": {"n": {"type": "integer", "maximum": i}}}}}
             for i in range(18)]  # (the test server's context holds the descriptions of about 20)
    r = server.client().chat.completions.create(model=server.model, messages=MSGS, tools=tools, tool_choice="required",
                                                temperature=1.0, seed=4, max_tokens=60)
    call = r.choices[0].message.tool_calls[0]
    i = int(call.function.name.split("_")[1])
    jsonschema.validate(json.loads(call.function.arguments), tools[i]["function"]["parameters"])


def test_auto_answer_streams_as_content(server):
    c = server.client()
    msgs = [{"role": "system", "content": "Answer without tools."}, {"role": "user", "content": "Say hello."}]
    kw = dict(model=server.model, messages=msgs, tools=[WEATHER], temperature=0, max_tokens=60)
    whole = c.chat.completions.create(**kw).choices[0]
    streamed = list(c.chat.completions.create(stream=True, **kw))
    deltas = [ch.choices[0].delta for ch in streamed if ch.choices]
    if whole.finish_reason == "tool_calls":
        assert any(d.tool_calls for d in deltas)
    else:
        assert "".join(d.content or "" for d in deltas) == whole.message.content


def test_none_is_a_plain_chat_and_history_with_results_is_taken(server):
    c = server.client()
    plain = c.chat.completions.create(model=server.model, messages=MSGS, temperature=0, max_tokens=20).choices[0].message.content
    none = c.chat.completions.create(model=server.model, messages=MSGS, tools=[WEATHER], tool_choice="none", temperature=0,
                                     max_tokens=20).choices[0].message.content
    assert none == plain
    history = MSGS + [
        {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function", "function": {
            "name": "get_weather", "arguments": '{"city": "Paris", "unit": "celsius"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18 degrees, sunny"}]
    r = c.chat.completions.create(model=server.model, messages=history, tools=[WEATHER], temperature=0, max_tokens=60)
    ch = r.choices[0]
    assert ch.finish_reason in ("stop", "tool_calls", "length")
    if ch.finish_reason == "tool_calls":
        check_call(ch.message.tool_calls[0], ("get_weather",))


@pytest.mark.parametrize("kwargs,param", [
    (dict(tools=[{"type": "function"}]), "tools"),
    (dict(tools=[WEATHER, WEATHER]), "tools"),
    (dict(tools="get_weather"), "tools"),
    (dict(tools=[WEATHER], tool_choice={"type": "function", "function": {"name": "nope"}}), "tool_choice"),
    (dict(tools=[WEATHER], tool_choice="sometimes"), "tool_choice"),
    (dict(tools=[WEATHER], parallel_tool_calls="yes"), "parallel_tool_calls"),
    (dict(tools=[WEATHER], response_format={"type": "json_object"}), "tools"),
    (dict(tools=[WEATHER], messages=MSGS + [{"role": "assistant", "tool_calls": ["call"]}]), "messages"),
    (dict(tools=[WEATHER], messages=MSGS + [  # ids of any JSON type: taken or a 400, not a 500
        {"role": "assistant", "tool_calls": [{"id": ["x"], "function": {"name": "get_weather", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": {"a": 1}, "content": 5}]), "messages"),
    (dict(tools=[WEATHER], messages=MSGS + [{"role": "assistant", "tool_calls": [
        {"id": "1", "function": {"name": "get_weather", "arguments": "{oops"}}]}]), "messages"),
    (dict(tools=[{"type": "function", "function": {"name": "f", "parameters": {
        "type": "object", "properties": {"n": {"type": "array", "items": {"type": "string"}, "uniqueItems": True}}}}}]),
     "tools"),
    # An anyOf alternative it cannot enforce is refused in a tool, not left out (Pydantic's Decimal).
    (dict(tools=[{"type": "function", "function": {"name": "f", "parameters": {
        "type": "object", "properties": {"n": {"anyOf": [{"type": "number"}, {"type": "string", "pattern": "^(?!x)"}]}}}}}]),
     "tools"),
])
def test_bad_tools_are_400(server, kwargs, param):
    kwargs.setdefault("messages", MSGS)
    with pytest.raises(openai.BadRequestError) as e:
        server.client().chat.completions.create(model=server.model, max_tokens=5, **kwargs)
    assert e.value.body["param"] == param
