"""A thinking model's chat reply split into reasoning_content and content (reasoning.py), as
llama.cpp's server and vLLM's reasoning parsers return them: the splitter on text, whole or in
any pieces, and the server's chat route on a model whose vocabulary has <think> and </think>."""
import json
import random

import httpx
import pytest

from gguf_factory import make_tiny_llama
from llmasos.reasoning import ReasoningSplitter, open_at_start, split, thinks
from test_server import RunningServer


@pytest.mark.parametrize("text,opened,want", [
    # Qwen3: the reply opens its reasoning; whitespace around it and before the answer goes.
    ("<think>\nplan it\n</think>\n\nThe answer.", False, ("plan it", "The answer.", True)),
    ("  <think>a</think>b", False, ("a", "b", True)),
    ("<think></think>\n\nJust this.", False, ("", "Just this.", True)),
    # DeepSeek R1: the prompt opened it; the reply starts inside (a <think> it still writes goes).
    ("step 1\nstep 2\n</think>\nDone", True, ("step 1\nstep 2", "Done", True)),
    ("cut off while thinking", True, ("cut off while thinking", "", True)),
    (" <think>\nagain</think>x", True, ("again", "x", True)),
    ("<th", True, ("<th", "", True)),
    ("", True, ("", "", True)),
    # A model that does not think, or a <think> that is not at the start: all answer, unchanged.
    ("  Hello <think>x</think>", False, ("", "  Hello <think>x</think>", False)),
    ("<thinking>no</thinking>", False, ("", "<thinking>no</thinking>", False)),
    ("<thi", False, ("", "<thi", False)),
    ("\n", False, ("", "\n", False)),
    # Only the first </think> ends the reasoning; "<" and spaces inside it stay.
    ("<think>a < b  and  c</think>x</think>y", False, ("a < b  and  c", "x</think>y", True)),
])
def test_split(text, opened, want):
    assert split(text, opened) == want


def test_pieces_give_what_the_whole_gives():
    """Streamed in random pieces (a tag split anywhere), the parts join to the whole's."""
    rng = random.Random(7)
    alphabet = ["<think>", "</think>", "<", "/", "think", ">", " ", "\n", "a", "b c", "<th"]
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        opened = rng.random() < 0.3
        cuts = sorted(rng.sample(range(len(text) + 1), min(len(text) + 1, rng.randint(0, 5))))
        pieces = [text[a:b] for a, b in zip([0] + cuts, cuts + [len(text)])]
        s = ReasoningSplitter(opened)
        got = [s.feed(p) for p in pieces] + [s.finish()]
        whole = split(text, opened)
        assert ("".join(r for r, _ in got), "".join(a for _, a in got), s.saw_reasoning) == whole, (text, pieces)


def test_detection():
    assert thinks(lambda t: t in ("<think>", "</think>"), None)
    assert thinks(lambda t: False, "{{ '<think>' }}...{{ '</think>' }}")
    assert not thinks(lambda t: t == "<think>", "<|im_start|>")
    assert open_at_start("<|im_start|>assistant\n<think>\n") and not open_at_start("<think>\n\n</think>\n\n")
    assert not open_at_start("<|im_start|>assistant\n")
    # A <think> in the user's words does not open the reply's reasoning; one left open in the
    # assistant message the reply continues does.
    assert not open_at_start("<|im_start|>user\nWhat is the <think> tag?<|im_end|>\n<|im_start|>assistant\n")
    assert open_at_start("<|im_start|>assistant\n<think>\nFirst,", "<think>\nFirst,")
    assert not open_at_start("<|im_start|>assistant\n<think>a</think>b", "<think>a</think>b")


# DeepSeek R1's way: the generation prompt opens the reasoning. enable_thinking false (Qwen3's
# switch) closes it at once, so the reply is all answer.
R1 = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
      "{% if add_generation_prompt %}<|im_start|>assistant\n<think>\n"
      "{% if enable_thinking is defined and not enable_thinking %}</think>\n\n{% endif %}{% endif %}")
MSGS = [{"role": "user", "content": "hi"}]


def chat(server, stream=False, **body):
    r = httpx.post(server.base + "/v1/chat/completions", json={"messages": MSGS, "max_tokens": 6, "ignore_eos": True, "temperature": 0,
                                                               "stream": stream, **body}, timeout=60)
    assert r.status_code == 200, r.text
    if not stream:
        return r.json()["choices"][0]["message"]
    deltas = [json.loads(line[6:])["choices"][0]["delta"] for line in r.text.splitlines()
              if line.startswith("data: {") and json.loads(line[6:])["choices"]]
    return {"reasoning_content": "".join(d.get("reasoning_content", "") for d in deltas),
            "content": "".join(d.get("content") or "" for d in deltas)}


def test_server_splits_a_thinking_models_reply(tmp_path):
    path = str(make_tiny_llama(tmp_path / "think.gguf", extra_tokens=["<think>", "</think>"]).path)
    plain = str(make_tiny_llama(tmp_path / "plain.gguf").path)
    tfile = tmp_path / "r1.jinja"
    tfile.write_text(R1)
    from llmasos import LLM, SamplingParams
    with LLM.from_pretrained(path, threads=1, chat_template=R1) as llm:
        close = llm.tokenize("</think>", add_bos=False)
        assert len(close) == 1
        ids = llm.chat_prompt_ids(MSGS)
        raw = llm.generate(ids, SamplingParams(max_tokens=6, ignore_eos=True))[0].text
        forced = llm.generate(ids, SamplingParams(max_tokens=6, ignore_eos=True, logit_bias={close[0]: 100}))[0].text
    assert forced == "</think>" * 6
    servers = [RunningServer(path, "--chat-template", str(tfile)),
               RunningServer(path, "--chat-template", str(tfile), "--reasoning-format", "none"),
               RunningServer(plain), RunningServer(path)]  # the last: ChatML, opens nothing
    try:
        auto, none, other, chatml = servers
        for stream in (False, True):
            # Opened by the prompt and never closed: all of it is reasoning.
            m = chat(auto, stream)
            assert (m["reasoning_content"], m["content"]) == (raw.strip(), "")
            # Closed by the first token: the rest is the answer, other </think> in it kept.
            m = chat(auto, stream, logit_bias={str(close[0]): 100})
            assert (m["reasoning_content"], m["content"]) == ("", "</think>" * 5)
            # The template's own switch closes it in the prompt: all answer.
            m = chat(auto, stream, chat_template_kwargs={"enable_thinking": False})
            assert not m["reasoning_content"] and m["content"]
            # --reasoning-format none leaves the text whole; a model that does not think too.
            m = chat(none, stream)
            assert m["content"] == raw and not m.get("reasoning_content")
        assert "reasoning_content" not in chat(other) and "reasoning_content" not in chat(none)
        # A <think> in the user's words opens nothing: a reply without tags is all answer.
        for words in ("hi", "what is the <think> tag?"):
            m = chat(chatml, messages=[{"role": "user", "content": words}])
            assert m["reasoning_content"] is None and m["content"]
        # Held to JSON, nothing is split off.
        m = chat(auto, response_format={"type": "json_object"}, max_tokens=8)
        assert "reasoning_content" not in m
    finally:
        for s in servers:
            s.stop()


def test_reasoning_is_split_off_before_native_tool_calls(tmp_path):
    """A thinking template with the Hermes tool syntax (Qwen3's kind), tool_choice auto: the reply
    is free, so its reasoning is split off before the calls are read out of the answer."""
    path = str(make_tiny_llama(tmp_path / "think.gguf", extra_tokens=["<think>", "</think>"]).path)
    tfile = tmp_path / "r1_tools.jinja"
    tfile.write_text("{% if tools %}<|im_start|>system\n<tools>{{ tools | tojson }}</tools>\n"
                     "Call one as <tool_call>{...}</tool_call>.<|im_end|>\n{% endif %}" + R1)
    tools = [{"type": "function", "function": {"name": "f", "parameters": {
        "type": "object", "properties": {"x": {"enum": [1, 2]}}, "required": ["x"], "additionalProperties": False}}}]
    server = RunningServer(path, "--chat-template", str(tfile))
    try:
        from llmasos import LLM
        with LLM.from_pretrained(path, threads=1) as llm:
            close = llm.tokenize("</think>", add_bos=False)[0]
        for stream in (False, True):
            m = chat(server, stream, tools=tools)
            assert m["reasoning_content"] and m["content"] in ("", None)  # opened by the prompt, never closed
            m = chat(server, stream, tools=tools, logit_bias={str(close): 100})
            assert m["reasoning_content"] in ("", None) and m["content"] == "</think>" * 5
            # "required" holds the reply to a call: nothing to split.
            if not stream:
                r = httpx.post(server.base + "/v1/chat/completions", timeout=60, json={
                    "messages": MSGS, "tools": tools, "tool_choice": "required", "max_tokens": 120, "temperature": 0})
                msg = r.json()["choices"][0]["message"]
                assert "reasoning_content" not in msg and msg["tool_calls"][0]["function"]["name"] == "f"
    finally:
        server.stop()


def test_responses_api_returns_reasoning_items(tmp_path):
    """/v1/responses on a thinking model: the reasoning comes as a reasoning item before the
    message, whole and streamed alike, and usage counts its tokens."""
    path = str(make_tiny_llama(tmp_path / "think.gguf", extra_tokens=["<think>", "</think>"]).path)
    tfile = tmp_path / "r1.jinja"
    tfile.write_text(R1)
    server = RunningServer(path, "--chat-template", str(tfile))
    try:
        from llmasos import LLM
        with LLM.from_pretrained(path, threads=1) as llm:
            close = llm.tokenize("</think>", add_bos=False)[0]
            # The first token thinks, the second closes the reasoning, the rest answer.
            body = {"input": "hi", "max_output_tokens": 6, "temperature": 0, "ignore_eos": True}
            want = chat(server, max_tokens=6)
            for stream in (False, True):
                r = httpx.post(server.base + "/v1/responses", json={**body, "stream": stream}, timeout=60)
                assert r.status_code == 200, r.text
                if stream:
                    events = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: ")]
                    assert [e["sequence_number"] for e in events] == list(range(len(events)))
                    deltas = "".join(e["delta"] for e in events if e["type"] == "response.reasoning_text.delta")
                    resp = events[-1]["response"]
                    assert deltas == resp["output"][0]["content"][0]["text"]
                else:
                    resp = r.json()
                kinds = [(o["type"], o["status"]) for o in resp["output"]]
                # Cut by max_output_tokens while thinking: both the reasoning and the (empty) answer.
                assert kinds == [("reasoning", "incomplete"), ("message", "incomplete")], kinds
                assert resp["status"] == "incomplete"
                thought = resp["output"][0]["content"][0]["text"]
                assert thought == want["reasoning_content"] and resp["output"][1]["content"][0]["text"] == ""
                assert resp["usage"]["output_tokens_details"]["reasoning_tokens"] == len(
                    llm.tokenize(thought, add_bos=False))
            m = chat(server, max_tokens=6, logit_bias={str(close): 100})
            r = httpx.post(server.base + "/v1/responses", timeout=60,
                           json={**body, "logit_bias": {str(close): 100}}).json()
            assert [o["type"] for o in r["output"]] == ["message"]
            assert r["output"][0]["content"][0]["text"] == m["content"] == "</think>" * 5
    finally:
        server.stop()
