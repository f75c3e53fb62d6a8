"""Function calling in Llama 3's JSON form (server_tools_llama3.py) for a chat template that asks
for it (tests/llama3_template.jinja, in the form of Meta's, given with --chat-template): the tools
rendered by the template, "required" and a named tool held to one {"name", "parameters"} object
with valid parameters, streamed as whole; a reply read as calls or as the answer, in any pieces;
history with a call and its result."""
import json
import random
from pathlib import Path

import jsonschema
import pytest

from llmasos import LLM, chat_template
from llmasos.server_tools_hermes import is_hermes_template
from llmasos.server_tools_llama3 import Llama3Stream, Llama3ToolRequest, is_llama3_template
from test_server import RunningServer
from test_server_tools import MSGS, PARAMS, TIME, WEATHER
from test_server_tools_hermes import collect, feed_in_pieces

TEMPLATE = Path(__file__).with_name("llama3_template.jinja")
DEEP = '{"name": "f", "parameters": {"a": ' + "[" * 1500 + "]" * 1500 + "}}"


REPLIES = [
    ('{"name": "f", "parameters": {"x": 1}}', "", [("f", {"x": 1})]),
    ('  <|python_tag|>{"name": "f", "arguments": {"s": "a;b"}}', "", [("f", {"s": "a;b"})]),
    ('{"name": "f", "parameters": {}}; {"name": "g", "parameters": {"y": [1, 2]}}', "", [("f", {}), ("g", {"y": [1, 2]})]),
    ("It is sunny in Paris.", "It is sunny in Paris.", []),
    ('Sure: {"name": "f", "parameters": {}}', 'Sure: {"name": "f", "parameters": {}}', []),  # not only calls
    ('{"name": "f", "param', '{"name": "f", "param', []),  # cut short
    ('{"answer": 42}', '{"answer": 42}', []),  # JSON, but no call
    ("<|python", "<|python", []),
    (DEEP, DEEP, []),  # nested past what a request may hold: the answer, not a call
    ("  ", "  ", []),
]


@pytest.mark.parametrize("text, content, calls", REPLIES)
def test_reply_read_in_any_pieces(text, content, calls):
    rng = random.Random(3)
    assert collect(Llama3Stream(first_only=False).feed(text, True)) == (content, calls)
    for _ in range(40):
        assert collect(feed_in_pieces(text, rng, Llama3Stream, first_only=False)) == (content, calls)
    msg, reason = Llama3ToolRequest({"tools": [WEATHER], "parallel_tool_calls": True}).message(text, "stop")
    if calls:
        assert reason == "tool_calls" and [c["function"]["name"] for c in msg["tool_calls"]] == [n for n, _ in calls]
    else:
        assert reason == "stop" and msg == {"role": "assistant", "content": content}
    # parallel_tool_calls false (the default here): the first call only.
    assert collect(Llama3Stream().feed(text, True))[1] == calls[:1]


def test_template_detection():
    text = TEMPLATE.read_text()
    assert is_llama3_template(text) and not is_hermes_template(text)
    assert not is_llama3_template(chat_template.DEFAULT_TEMPLATE)
    assert not is_llama3_template(Path(__file__).with_name("hermes_template.jinja").read_text())


def test_history_renders_in_the_template(smollm2_gguf):
    llm = LLM.from_pretrained(smollm2_gguf, n_ctx=1024, threads=2, chat_template=TEMPLATE.read_text())
    req = Llama3ToolRequest({"tools": [WEATHER], "messages": MSGS})
    msgs = MSGS + [{"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "get_weather",
                                                      "arguments": '{"city": "Paris", "unit": "celsius"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "18 degrees"}]
    text = llm.chat_prompt_text(req.messages(msgs), chat_template_kwargs=req.template_kwargs(None))
    assert '"name": "get_weather",\n        "description": "The current weather in a city."' in text
    assert '{"name": "get_weather", "parameters": {"city": "Paris", "unit": "celsius"}}<|eom_id|>' in text
    assert "<|start_header_id|>ipython<|end_header_id|>\n\n18 degrees<|eot_id|>" in text


@pytest.fixture(scope="module")
def server(smollm2_gguf):
    s = RunningServer(smollm2_gguf, "--chat-template", str(TEMPLATE))
    yield s
    s.stop()


def forced_calls(c, model):
    """tool_choice "required", then a named function, whole and streamed: one call with valid
    arguments, the same both ways, finish_reason tool_calls. Returns the whole replies' calls."""
    made = []
    for choice in ("required", {"type": "function", "function": {"name": "get_time"}}):
        r = c.chat.completions.create(model=model, messages=MSGS, tools=[WEATHER, TIME], tool_choice=choice,
                                      max_tokens=80, temperature=0)
        assert r.choices[0].finish_reason == "tool_calls"
        (tc,) = r.choices[0].message.tool_calls
        name, args = tc.function.name, json.loads(tc.function.arguments)
        assert name == "get_time" or not isinstance(choice, dict)
        jsonschema.validate(args, PARAMS[name])
        chunks = list(c.chat.completions.create(model=model, messages=MSGS, tools=[WEATHER, TIME],
                                                tool_choice=choice, max_tokens=80, temperature=0, stream=True))
        calls = [tc for ch in chunks if ch.choices for tc in (ch.choices[0].delta.tool_calls or [])]
        assert [(tc.function.name, json.loads(tc.function.arguments)) for tc in calls] == [(name, args)]
        assert chunks[-1].choices[0].finish_reason == "tool_calls"
        made.append(tc)
    return made


def test_required_named_streamed_and_none(server):
    c = server.client()
    model = c.models.list().data[0].id
    forced_calls(c, model)
    # "auto": whatever the model writes, whole and streamed agree; "none" answers in text.
    r = c.chat.completions.create(model=model, messages=MSGS, tools=[WEATHER], max_tokens=40, temperature=0)
    chunks = list(c.chat.completions.create(model=model, messages=MSGS, tools=[WEATHER], max_tokens=40,
                                            temperature=0, stream=True))
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == (r.choices[0].message.content or "")
    r = c.chat.completions.create(model=model, messages=MSGS, tools=[WEATHER], tool_choice="none", max_tokens=8,
                                  temperature=0)
    assert r.choices[0].message.content and not r.choices[0].message.tool_calls
