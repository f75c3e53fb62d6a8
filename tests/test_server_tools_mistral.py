"""Function calling in Mistral's form (server_tools_mistral.py) for a chat template that has it
(tests/mistral_template.jinja, in the form of Mistral's v0.3 ones, given with --chat-template):
the tools listed by the template, "required" and a named tool held to one {"name", "arguments"}
object with valid arguments, streamed as whole; a reply read as calls or as the answer, in any
pieces; history with calls and results, their ids made as the template demands."""
import random
from pathlib import Path

import pytest

from llmasos import LLM, chat_template
from llmasos.server_tools_hermes import is_hermes_template
from llmasos.server_tools_llama3 import is_llama3_template
from llmasos.server_tools_mistral import MistralStream, MistralToolRequest, call_id, is_mistral_template
from test_server import RunningServer
from test_server_tools import MSGS, TIME, WEATHER
from test_server_tools_hermes import collect, feed_in_pieces
from test_server_tools_llama3 import forced_calls

TEMPLATE = Path(__file__).with_name("mistral_template.jinja")
DEEP = '[{"name": "f", "arguments": {"a": ' + "[" * 1500 + "]" * 1500 + "}}]"

REPLIES = [
    ('[TOOL_CALLS] [{"name": "f", "arguments": {"x": 1}}]', "", [("f", {"x": 1})]),
    (' [{"name": "f", "arguments": {"x": 1}}, {"name": "g", "arguments": {"y": [1, 2]}}]', "",
     [("f", {"x": 1}), ("g", {"y": [1, 2]})]),  # [TOOL_CALLS] not rendered
    ('{"name": "f", "arguments": "{\\"s\\": \\"a\\"}"}', "", [("f", {"s": "a"})]),  # one object, text arguments
    ("It is sunny in Paris.", "It is sunny in Paris.", []),
    ("[1] is a footnote.", "[1] is a footnote.", []),
    ('Sure: [{"name": "f", "arguments": {}}]', 'Sure: [{"name": "f", "arguments": {}}]', []),  # not only calls
    ('[{"name": "f", "argu', '[{"name": "f", "argu', []),  # cut short
    ('[{"answer": 42}]', '[{"answer": 42}]', []),  # JSON, but no call
    ("[]", "[]", []),
    (DEEP, DEEP, []),  # nested past what a request may hold: the answer, not a call
    ("  ", "  ", []),
]


@pytest.mark.parametrize("text, content, calls", REPLIES)
def test_reply_read_in_any_pieces(text, content, calls):
    rng = random.Random(5)
    assert collect(MistralStream().feed(text, True)) == (content, calls)
    for _ in range(40):
        assert collect(feed_in_pieces(text, rng, MistralStream)) == (content, calls)
    msg, reason = MistralToolRequest({"tools": [WEATHER]}).message(text, "stop")
    if calls:
        assert reason == "tool_calls" and [c["function"]["name"] for c in msg["tool_calls"]] == [n for n, _ in calls]
        assert all(call_id(c["id"]) == c["id"] for c in msg["tool_calls"])  # ids the template takes
    else:
        assert reason == "stop" and msg == {"role": "assistant", "content": content}
    assert collect(MistralStream(first_only=True).feed(text, True))[1] == calls[:1]


def test_template_detection_and_ids():
    text = TEMPLATE.read_text()
    assert is_mistral_template(text) and not is_hermes_template(text) and not is_llama3_template(text)
    assert not is_mistral_template(chat_template.DEFAULT_TEMPLATE)
    assert not is_mistral_template(Path(__file__).with_name("llama3_template.jinja").read_text())
    assert call_id("abcDEF123") == "abcDEF123"
    made = [call_id("call_0123456789abcdef"), call_id("x"), call_id()]
    assert all(len(i) == 9 and i.isalnum() for i in made) and made[0] == call_id("call_0123456789abcdef")


def test_history_renders_in_the_template(smollm2_gguf):
    """OpenAI ids in the history (any length) become 9-character ones, the same for a call and its
    result, so the template (which refuses others) writes the turns."""
    llm = LLM.from_pretrained(smollm2_gguf, n_ctx=1024, threads=2, chat_template=TEMPLATE.read_text())
    req = MistralToolRequest({"tools": [WEATHER], "messages": MSGS})
    msgs = MSGS + [{"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_abc", "type": "function", "function": {"name": "get_weather",
                                                            "arguments": '{"city": "Paris", "unit": "celsius"}'}}]},
        {"role": "tool", "tool_call_id": "call_abc", "content": "18 degrees"}]
    text = llm.chat_prompt_text(req.messages(msgs), chat_template_kwargs=req.template_kwargs(None))
    i = call_id("call_abc")
    assert '[AVAILABLE_TOOLS] [{"type": "function", "function": {"name": "get_weather"' in text
    assert f'[TOOL_CALLS] [{{"name": "get_weather", "arguments": {{"city": "Paris", "unit": "celsius"}}, "id": "{i}"}}]' in text
    assert f'[TOOL_RESULTS] {{"content": "18 degrees", "call_id": "{i}"}}[/TOOL_RESULTS]' in text


@pytest.fixture(scope="module")
def server(smollm2_gguf):
    s = RunningServer(smollm2_gguf, "--chat-template", str(TEMPLATE))
    yield s
    s.stop()


def test_required_named_streamed_and_history(server):
    c = server.client()
    model = c.models.list().data[0].id
    made = forced_calls(c, model)
    assert all(len(tc.id) == 9 and tc.id.isalnum() for tc in made)  # ids Mistral's templates take
    tc = made[-1]
    # The call and its result sent back (with the id it came with, and with an OpenAI one) render
    # and are answered, with tools and without.
    for call in (tc, tc.model_copy(update={"id": "call_" + "x" * 24})):
        history = MSGS + [{"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
                          {"role": "tool", "tool_call_id": call.id, "content": "12:00"}]
        for tools in ([WEATHER, TIME], None):
            extra = {"tools": tools} if tools else {}
            r = c.chat.completions.create(model=model, messages=history, max_tokens=8, temperature=0, **extra)
            assert r.choices[0].finish_reason in ("stop", "length", "tool_calls")
    r = c.chat.completions.create(model=model, messages=MSGS, tools=[WEATHER], tool_choice="none", max_tokens=8,
                                  temperature=0)
    # "none": an answer in text (this model, on a template foreign to it, may end it at once).
    assert r.choices[0].finish_reason in ("stop", "length") and not r.choices[0].message.tool_calls
