"""Function calling in the Hermes syntax (server_tools_hermes.py) for a chat template that has it
(tests/hermes_template.jinja, given with --chat-template): the tools rendered by the template,
"required" and a named tool held to one <tool_call> block with valid arguments, streamed as
whole; "auto" read out of free text; history with calls and results; the stream parser on text
cut anywhere; and transformers' tojson."""
import json
import random
from pathlib import Path

import jsonschema
import pytest

from llmasos import LLM, chat_template
from llmasos.server_tools_hermes import HermesStream, HermesToolRequest, is_hermes_template
from test_server import RunningServer
from test_server_tools import MSGS, PARAMS, TIME, WEATHER

TEMPLATE = Path(__file__).with_name("hermes_template.jinja")
DEEP = '<tool_call>{"name": "f", "arguments": {"a": ' + "[" * 1500 + "]" * 1500 + "}}</tool_call>"


# ---- the stream parser -------------------------------------------------------------------------

def feed_in_pieces(text, rng, stream=HermesStream, **kw):
    """The deltas of a reply fed to a new stream(**kw) in random pieces of 1 to 7 characters."""
    s, deltas, i = stream(**kw), [], 0
    while i < len(text):
        j = min(len(text), i + rng.randint(1, 7))
        deltas += s.feed(text[i:j], j == len(text))
        i = j
    return deltas


def collect(deltas):
    content = "".join(d.get("content", "") for d in deltas)
    calls = [(tc["function"]["name"], json.loads(tc["function"]["arguments"]))
             for d in deltas for tc in d.get("tool_calls", [])]
    return content, calls


REPLIES = [
    ("Just text, with a < and <tool but no call.", "Just text, with a < and <tool but no call.", []),
    ('<tool_call>\n{"name": "f", "arguments": {"x": 1}}\n</tool_call>', "", [("f", {"x": 1})]),
    ('Let me look.\n<tool_call>\n{"name": "f", "arguments": {"x": "<a>"}}\n</tool_call>\n'
     '<tool_call>\n{"name": "g", "arguments": "{\\"y\\": [1, 2]}"}\n</tool_call>\n',
     "Let me look.", [("f", {"x": "<a>"}), ("g", {"y": [1, 2]})]),
    # Whitespace next to calls is dropped, the same in any pieces; a block that is no call is text.
    ('\n\n<tool_call>{"name": "f", "arguments": {}}</tool_call>\n \n<tool_call>{"name": "g", "arguments": {}}'
     '</tool_call>\n', "", [("f", {}), ("g", {})]),
    ('\n<tool_call>{"name": "g", "arguments": {}}</tool_call>Hi <tool_call></tool', "Hi <tool_call></tool", [("g", {})]),
    ("  text with spaces  ", "  text with spaces  ", []),
    ('<tool_call>\nnot json\n</tool_call> after', "<tool_call>\nnot json\n</tool_call> after", []),
    ('<tool_call>\n{"name": "f", "arguments": {"x": 1}}\n</tool', "", [("f", {"x": 1})]),  # cut short, yet whole JSON
    ('<tool_call>\n{"name": "f", "argu', '<tool_call>\n{"name": "f", "argu', []),  # cut short: as text
    (DEEP, DEEP, []),  # nested past what a request may hold: text, not a call
]


@pytest.mark.parametrize("text, content, calls", REPLIES)
def test_stream_parser_in_any_pieces(text, content, calls):
    rng = random.Random(1)
    whole = HermesStream().feed(text, True)
    assert collect(whole) == (content, calls)
    for _ in range(50):
        assert collect(feed_in_pieces(text, rng)) == (content, calls)
    msg, reason = HermesToolRequest({"tools": [WEATHER]}).message(text, "stop")
    if calls:
        assert reason == "tool_calls" and [c["function"]["name"] for c in msg["tool_calls"]] == [n for n, _ in calls]
        assert msg["content"] == (content.strip() or None)
    else:
        assert reason == "stop" and msg == {"role": "assistant", "content": content}


def test_forced_and_first_only_streams():
    """A forced reply (required / named) is read whole: a string may hold "</tool_call>";
    first_only (parallel_tool_calls false) keeps the first call."""
    rng = random.Random(2)
    forced = '<tool_call>\n{"name": "f", "arguments": {"s": "a</tool_call>b"}}\n</tool_call>'
    for _ in range(30):
        assert collect(feed_in_pieces(forced, rng, forced=True)) == ("", [("f", {"s": "a</tool_call>b"})])
    two = '<tool_call>{"name": "f", "arguments": {}}</tool_call><tool_call>{"name": "g", "arguments": {}}</tool_call>'
    assert collect(feed_in_pieces(two, rng, first_only=True)) == ("", [("f", {})])
    req = HermesToolRequest({"tools": [WEATHER], "parallel_tool_calls": False})
    assert [c["function"]["name"] for c in req.message(two, "stop")[0]["tool_calls"]] == ["f"]


def test_template_detection_and_tojson():
    assert is_hermes_template(TEMPLATE.read_text())
    assert not is_hermes_template(chat_template.DEFAULT_TEMPLATE)
    text = chat_template.render("{{ x | tojson }} {{ x | tojson(indent=1) }}", [{"role": "user", "content": "a"}],
                                kwargs={"x": {"a": "<b> & 'c' \u00e9"}})
    assert text == '{"a": "<b> & \'c\' \u00e9"} ' + json.dumps({"a": "<b> & 'c' \u00e9"}, indent=1, ensure_ascii=False)


def test_history_renders_in_the_template(smollm2_gguf):
    llm = LLM.from_pretrained(smollm2_gguf, n_ctx=1024, threads=2, chat_template=TEMPLATE.read_text())
    req = HermesToolRequest({"tools": [WEATHER], "messages": MSGS})
    msgs = MSGS + [{"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "get_weather",
                                                      "arguments": '{"city": "Paris", "unit": "celsius"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "18 degrees"}]
    text = llm.detokenize(llm.chat_prompt_ids(req.messages(msgs), chat_template_kwargs=req.template_kwargs(None)),
                          special=True)
    assert '"name": "get_weather", "description": "The current weather in a city."' in text
    assert '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}\n</tool_call>' in text
    assert "<tool_response>\n18 degrees\n</tool_response>" in text
    # LLM.chat's tools= (vLLM's) gives the template the same variable.
    assert llm.chat_prompt_ids(req.messages(msgs), tools=req.openai_tools) == \
        llm.chat_prompt_ids(req.messages(msgs), chat_template_kwargs=req.template_kwargs(None))


# ---- the server ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def server(smollm2_gguf):
    s = RunningServer(smollm2_gguf, "--chat-template", str(TEMPLATE))
    yield s
    s.stop()


def call_of(choice):
    assert choice.finish_reason == "tool_calls"
    (tc,) = choice.message.tool_calls
    return tc.function.name, json.loads(tc.function.arguments)


def test_required_and_named_calls(server):
    c = server.client()
    model = c.models.list().data[0].id
    for choice in ("required", {"type": "function", "function": {"name": "get_time"}}):
        r = c.chat.completions.create(model=model, messages=MSGS, tools=[WEATHER, TIME], tool_choice=choice,
                                      max_tokens=80, temperature=0)
        name, args = call_of(r.choices[0])
        if isinstance(choice, dict):
            assert name == "get_time"
        jsonschema.validate(args, PARAMS[name])
        chunks = list(c.chat.completions.create(model=model, messages=MSGS, tools=[WEATHER, TIME],
                                                tool_choice=choice, max_tokens=80, temperature=0, stream=True))
        calls = [tc for ch in chunks if ch.choices for tc in (ch.choices[0].delta.tool_calls or [])]
        assert [(tc.function.name, json.loads(tc.function.arguments)) for tc in calls] == [(name, args)]
        assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_auto_and_a_turn_with_the_result(server):
    c = server.client()
    model = c.models.list().data[0].id
    r = c.chat.completions.create(model=model, messages=MSGS, tools=[WEATHER], max_tokens=60, temperature=0)
    msg = r.choices[0].message
    # A model not trained on tools may answer or call; either way the reply is well formed.
    assert (msg.tool_calls and r.choices[0].finish_reason == "tool_calls") or \
        (not msg.tool_calls and isinstance(msg.content, str))
    history = MSGS + [{"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "get_weather",
                                                      "arguments": '{"city": "Paris", "unit": "celsius"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "18 degrees and sunny"}]
    r = c.chat.completions.create(model=model, messages=history, tools=[WEATHER], tool_choice="none",
                                  max_tokens=30, temperature=0)
    assert r.choices[0].message.content and not r.choices[0].message.tool_calls
    r = c.chat.completions.create(model=model, messages=history, tools=[WEATHER], max_tokens=30, temperature=0)
    assert r.choices[0].finish_reason in ("stop", "length", "tool_calls")


def test_history_without_calls_allowed_and_bad_requests(server, smollm2_gguf):
    """tool_choice "none" (or no tools) still gives the template the history in its own form (the
    arguments as objects; with "none" the tools too, as vLLM); malformed requests are 400s."""
    import openai
    c = server.client()
    model = c.models.list().data[0].id
    history = MSGS + [{"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "get_weather",
                                                      "arguments": '{"city": "Paris", "unit": "celsius"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "18 degrees"}]
    llm = LLM.from_pretrained(smollm2_gguf, n_ctx=1024, threads=2, chat_template=TEMPLATE.read_text())
    converted = HermesToolRequest.messages(history)
    for extra, want in (({"tools": [WEATHER], "tool_choice": "none"}, llm.chat_prompt_ids(converted, tools=[WEATHER])),
                        ({}, llm.chat_prompt_ids(converted))):
        r = c.chat.completions.create(model=model, messages=history, max_tokens=5, temperature=0, **extra)
        assert r.usage.prompt_tokens == len(want) and not r.choices[0].message.tool_calls
    for body, param in (({"messages": ["hi"], "tools": [WEATHER]}, "messages"),
                        ({"messages": MSGS, "tools": [WEATHER], "parallel_tool_calls": "yes"}, "parallel_tool_calls"),
                        ({"messages": MSGS, "tool_choice": "required"}, "tool_choice")):
        with pytest.raises(openai.BadRequestError) as e:
            c.chat.completions.create(model=model, max_tokens=5, **body)
        assert e.value.body["param"] == param, body
