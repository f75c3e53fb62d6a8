"""Ollama's API on the real server, driven with the `ollama` Python client: chat and generate,
whole and streamed, equal to the OpenAI routes' text under Ollama's defaults (repeat_penalty 1.1
over the last 64 tokens); raw and system prompts; format as JSON mode and as a schema; a tool
call and its result in the history; embed and embeddings equal to LLM.embed; tags, ps, show and
version; errors as Ollama's {"error": ...}; clients that go away free their KV blocks."""
import json

import httpx
import jsonschema
import numpy as np
import ollama
import pytest

import llmasos
from llmasos import LLM
from test_server import N_CTX, disconnect_mid_stream, wait_idle
from test_server_tools import WEATHER

MSGS = [{"role": "user", "content": "What is the capital of France?"}]
GREEDY = {"temperature": 0, "num_predict": 12}
OLLAMA_PENALTY = {"repeat_penalty": 1.1, "repeat_last_n": 64}  # Ollama's defaults, as the chat route's extra fields


@pytest.fixture(scope="module")
def client(server):
    return ollama.Client(host=server.base)


@pytest.fixture(scope="module")
def name(server):
    return server.client().models.list().data[0].id


def test_chat_whole_and_streamed_equal_the_openai_route(server, client, name):
    want = server.client().chat.completions.create(model=name, messages=MSGS, max_tokens=12, temperature=0,
                                                   extra_body=OLLAMA_PENALTY)
    r = client.chat(model=name, messages=MSGS, options=GREEDY)
    assert r.message.role == "assistant" and r.message.content == want.choices[0].message.content
    assert r.done and r.done_reason == "length" and r.eval_count == 12
    assert r.prompt_eval_count == want.usage.prompt_tokens and r.total_duration >= r.eval_duration > 0
    parts = list(client.chat(model=name, messages=MSGS, options=GREEDY, stream=True))
    assert "".join(p.message.content for p in parts) == r.message.content
    assert parts[-1].done and parts[-1].done_reason == "length" and not any(p.done for p in parts[:-1])
    # With the model given as "name:latest", and seeded sampling: the same text twice.
    seeded = {"temperature": 0.9, "seed": 5, "num_predict": 12}
    a = client.chat(model=name + ":latest", messages=MSGS, options=seeded).message.content
    assert a == client.chat(model=name, messages=MSGS, options=seeded).message.content


def test_generate_chat_raw_and_system(server, client, name):
    r = client.generate(model=name, prompt=MSGS[0]["content"], options=GREEDY)
    assert r.response == client.chat(model=name, messages=MSGS, options=GREEDY).message.content
    assert r.done_reason == "length" and len(r.context) == r.prompt_eval_count + r.eval_count
    sys_msgs = [{"role": "system", "content": "Answer in French."}] + MSGS
    r = client.generate(model=name, prompt=MSGS[0]["content"], system="Answer in French.", options=GREEDY)
    assert r.response == client.chat(model=name, messages=sys_msgs, options=GREEDY).message.content
    raw = client.generate(model=name, prompt="The capital of France is", raw=True, options=GREEDY)
    want = server.client().completions.create(model=name, prompt="The capital of France is", max_tokens=12,
                                              temperature=0, extra_body=OLLAMA_PENALTY)
    assert raw.response == want.choices[0].text
    streamed = list(client.generate(model=name, prompt="The capital of France is", raw=True, options=GREEDY, stream=True))
    assert "".join(p.response for p in streamed) == raw.response and streamed[-1].done
    # No prompt: Ollama's way to load a model.
    assert client.generate(model=name).done_reason == "load"
    assert client.chat(model=name, messages=[]).done_reason == "load"


def test_generate_continues_a_context(server, client, name, smollm2_gguf):
    """`context` from one reply, given back with the next prompt, is continued: the new turn's
    template after those tokens (as Ollama's older clients chain a conversation); the reply equals
    a raw completion of exactly those ids, and its own context extends them."""
    first = client.generate(model=name, prompt=MSGS[0]["content"], options=GREEDY)
    turn = [{"role": "user", "content": "And of Italy?"}]
    second = client.generate(model=name, prompt=turn[0]["content"], context=first.context, options=GREEDY)
    with LLM.from_pretrained(smollm2_gguf, n_ctx=64) as llm:
        ids = list(first.context) + llm.chat_prompt_ids(turn)
        rome = llm.tokenize(" Rome")
    want = server.client().completions.create(model=name, prompt=ids, max_tokens=12, temperature=0,
                                              extra_body=OLLAMA_PENALTY)
    assert second.response == want.choices[0].text
    assert second.prompt_eval_count == len(ids) and list(second.context[:len(ids)]) == ids
    assert len(second.context) == len(ids) + second.eval_count
    raw = client.generate(model=name, prompt=" Rome", raw=True, context=first.context, options=GREEDY)
    assert raw.prompt_eval_count == len(first.context) + len(rome)
    for bad in ([-1], [1, "a"], [10 ** 9], "abc", {"a": 1}):
        r = httpx.post(server.base + "/api/generate", json={"model": name, "prompt": "Hi", "context": bad})
        assert r.status_code == 400 and "context" in r.json()["error"]
    r = httpx.post(server.base + "/api/generate", json={"model": name, "prompt": "a", "suffix": "b", "context": [1]})
    assert r.status_code == 400 and "suffix" in r.json()["error"]


def test_format_json_and_schema(client, name):
    ask = [{"role": "user", "content": "Give a cat's name and age as a JSON object."}]
    r = client.chat(model=name, messages=ask, format="json", options={"temperature": 0, "num_predict": 300})
    assert r.done_reason == "stop" and isinstance(json.loads(r.message.content), dict)
    schema = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 20},
                                               "age": {"type": "integer", "minimum": 0, "maximum": 30}},
              "required": ["name", "age"], "additionalProperties": False}
    r = client.chat(model=name, messages=ask, format=schema, options={"temperature": 0, "num_predict": 80})
    jsonschema.validate(json.loads(r.message.content), schema)


def test_tool_call_history(client, name):
    """A call in Ollama's form (arguments as an object, no id) and its result (tool_name) reach
    the template as the chat route's history; the model answers."""
    msgs = MSGS + [{"role": "assistant", "content": "", "tool_calls": [
        {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
        {"role": "tool", "content": "18 degrees", "tool_name": "get_weather"}]
    r = client.chat(model=name, messages=msgs, tools=[WEATHER], options=GREEDY)
    assert r.done and (r.message.content or r.message.tool_calls)


def test_embed_and_embeddings(client, name, smollm2_gguf):
    texts = ["The cat sat on the mat.", "Stock prices fell sharply today."]
    with LLM.from_pretrained(smollm2_gguf, n_ctx=N_CTX) as llm:
        want = llm.embed(texts)
    r = client.embed(model=name, input=texts)
    assert np.array(r.embeddings, np.float32).tobytes() == want.tobytes() and r.prompt_eval_count > 0
    one = client.embeddings(model=name, prompt=texts[1])
    assert np.array(one.embedding, np.float32).tobytes() == want[1].tobytes()


def test_tags_ps_show_version(server, client, name):
    (m,) = client.list().models
    assert m.model == name and m.size > 0 and len(m.digest) == 64
    assert m.details.format == "gguf" and m.details.family == "llama" and m.details.quantization_level == "Q4_1"
    (p,) = client.ps().models
    assert p.model == name and p.context_length == N_CTX
    s = client.show(name)
    assert s.template and "completion" in s.capabilities and "embedding" in s.capabilities
    assert s.modelinfo["general.architecture"] == "llama"
    assert httpx.get(server.base + "/api/version", timeout=10).json() == {"version": llmasos.__version__}


@pytest.mark.parametrize("kw,status", [
    (dict(model="no-such-model"), 404),
    (dict(options={"mirostat": 2}), 400),
    (dict(options={"no_such_option": 1}), 400),
    (dict(options={"num_predict": "12"}), 400),
    (dict(messages=[{"role": "user", "content": "hi", "images": ["aGk="]}]), 400),
    (dict(options={"temperature": -1}), 400),
])
def test_errors_are_ollama_errors(client, name, kw, status):
    with pytest.raises(ollama.ResponseError) as e:
        client.chat(**{"model": name, "messages": MSGS, **kw})
    assert e.value.status_code == status and e.value.error


def test_bad_bodies_the_client_would_not_send(server, name):
    for body in ({"model": name, "messages": MSGS, "format": "xml"}, {"model": name, "messages": "hi"},
                 {"messages": MSGS}, {"model": name, "messages": MSGS, "options": [1]}):
        r = httpx.post(server.base + "/api/chat", json=body, timeout=30)
        assert r.status_code == 400 and r.json()["error"], body
    # A suffix needs the model's fill-in-the-middle tokens, which SmolLM2 has not.
    r = httpx.post(server.base + "/api/generate", json={"model": name, "prompt": "def f(", "suffix": "return x"},
                   timeout=30)
    assert r.status_code == 400 and "fill-in-the-middle" in r.json()["error"]


def test_clients_going_away_free_their_blocks(server, name):
    """A stream closed midway, and a client that gives up on a whole answer, cancel their
    sequences: the KV pool comes back to its idle size."""
    count = [{"role": "user", "content": "Count from 1 to 1000, separated by commas."}]
    disconnect_mid_stream(server, "/api/chat", {"model": name, "messages": count, "options": {"num_predict": 400}})
    idle = wait_idle(server)
    # Greedy counting goes on to the context's end (~1000 tokens, seconds of work) unless cancelled.
    with pytest.raises(httpx.TimeoutException):
        httpx.post(server.base + "/api/generate", timeout=1.0, json={
            "model": name, "prompt": "1, 2, 3, 4, 5, 6, 7, 8,", "raw": True, "stream": False,
            "options": {"temperature": 0, "repeat_penalty": 1.0, "num_predict": -1}})
    assert wait_idle(server, timeout=4)["llmasos_kv_blocks_free"] == idle["llmasos_kv_blocks_free"]
