"""The OpenAI-compatible server, run for real on 127.0.0.1 and driven with the `openai` client:
completions, chat, streaming, models, errors, concurrency, cancellation, prefix caching."""
import concurrent.futures
import functools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import httpx  # declared test dependencies: a missing one must fail, not skip the server tests
import jsonschema
import openai
import pytest


N_CTX = 1024


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RunningServer:
    def __init__(self, model_path, *extra):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "llmasos", "serve", model_path, "--port", str(self.port),
             "--n-ctx", str(N_CTX), "--max-n", "4", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=os.environ.copy())
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("server exited: " + self.proc.stdout.read().decode())
            try:
                with urllib.request.urlopen(self.base + "/health", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("server did not become healthy")

    def client(self, api_key="none"):
        return openai.OpenAI(base_url=self.base + "/v1", api_key=api_key, max_retries=0, timeout=120)

    def metrics(self):
        with urllib.request.urlopen(self.base + "/metrics", timeout=10) as r:
            text = r.read().decode()
        return {m.group(1): float(m.group(2)) for m in re.finditer(r"^(llmasos_[a-z_]+) ([0-9.e+-]+)$", text, re.M)}

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="module")
def model_id(server):
    return server.client().models.list().data[0].id


def wait_idle(server, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        m = server.metrics()
        if m["llmasos_running_sequences"] == 0 and m["llmasos_queue_length"] == 0 and m["llmasos_kv_blocks_used"] == 0:
            return m
        time.sleep(0.1)
    raise AssertionError(f"server not idle: {server.metrics()}")


def test_models_and_health(server, model_id):
    assert model_id.endswith(".gguf") or model_id
    with urllib.request.urlopen(server.base + "/health") as r:
        assert json.loads(r.read()) == {"status": "ok"}
    import llmasos
    with urllib.request.urlopen(server.base + "/version") as r:
        assert json.loads(r.read()) == {"version": llmasos.__version__}


def test_completion_and_stream_agree(server, model_id):
    c = server.client()
    r = c.completions.create(model=model_id, prompt="The world is", max_tokens=16, temperature=0)
    text = r.choices[0].text
    assert text.strip() and r.choices[0].finish_reason in ("length", "stop")
    assert r.usage.completion_tokens == 16 or r.choices[0].finish_reason == "stop"
    pieces = [ch.choices[0].text for ch in c.completions.create(
        model=model_id, prompt="The world is", max_tokens=16, temperature=0, stream=True)]
    assert "".join(pieces) == text


def test_chat_and_stream(server, model_id):
    c = server.client()
    msgs = [{"role": "user", "content": "Name a color."}]
    r = c.chat.completions.create(model=model_id, messages=msgs, max_tokens=12, temperature=0)
    text = r.choices[0].message.content
    assert r.choices[0].message.role == "assistant" and text
    streamed = "".join(ch.choices[0].delta.content or "" for ch in c.chat.completions.create(
        model=model_id, messages=msgs, max_tokens=12, temperature=0, stream=True))
    assert streamed == text


def same_usage(again, first):
    """Usage equal but for cached_tokens, which can only grow when a prompt comes again."""
    cached = lambda u: u.prompt_tokens_details.cached_tokens
    strip = lambda u: u.model_dump(exclude={"prompt_tokens_details"})
    return strip(again) == strip(first) and cached(again) >= cached(first)


def test_stream_usage_and_model_retrieve(server, model_id):
    """stream_options.include_usage: a last chunk with empty choices carries the usage, equal to
    the non-streamed request's (but for the cached prompt tokens: the second request finds the
    first's in the prefix cache); models.retrieve finds the served model and 404s another."""
    c = server.client()
    plain = c.completions.create(model=model_id, prompt="Count: one, two,", max_tokens=6, temperature=0)
    chunks = list(c.completions.create(model=model_id, prompt="Count: one, two,", max_tokens=6, temperature=0,
                                       stream=True, stream_options={"include_usage": True}))
    assert chunks[-1].choices == [] and same_usage(chunks[-1].usage, plain.usage)
    assert all(ch.usage is None for ch in chunks[:-1])
    msgs = [{"role": "user", "content": "Say hi."}]
    plain = c.chat.completions.create(model=model_id, messages=msgs, max_tokens=5, temperature=0, n=2)
    chunks = list(c.chat.completions.create(model=model_id, messages=msgs, max_tokens=5, temperature=0, n=2,
                                            stream=True, stream_options={"include_usage": True}))
    assert chunks[-1].choices == [] and same_usage(chunks[-1].usage, plain.usage)
    with pytest.raises(openai.BadRequestError) as e:  # only with stream, as OpenAI says
        c.completions.create(model=model_id, prompt="Hi", max_tokens=2, stream_options={"include_usage": True})
    assert e.value.body["param"] == "stream_options"
    assert c.models.retrieve(model_id).id == model_id
    with pytest.raises(openai.NotFoundError):
        c.models.retrieve("gpt-4o")


def test_chat_content_parts(server, model_id):
    """OpenAI's list-of-parts content: text parts are joined by newlines (as vLLM joins them)."""
    c = server.client()
    parts = [{"type": "text", "text": "Name a color."}, {"type": "text", "text": "One word."}]
    a = c.chat.completions.create(model=model_id, messages=[{"role": "user", "content": parts}],
                                  max_tokens=8, temperature=0)
    b = c.chat.completions.create(model=model_id, messages=[{"role": "user", "content": "Name a color.\nOne word."}],
                                  max_tokens=8, temperature=0)
    assert a.choices[0].message.content == b.choices[0].message.content
    assert a.usage.prompt_tokens == b.usage.prompt_tokens


def test_chat_json_mode(server, model_id):
    """response_format json_object: the answer is one JSON object, streamed or not, alone or
    sampled n times; "text" is the default; JSON schemas are refused, not ignored."""
    from llmasos import _core
    c = server.client()
    msgs = [{"role": "user", "content": "Describe a cat as a JSON object with name, age and color."}]
    fmt = {"type": "json_object"}
    r = c.chat.completions.create(model=model_id, messages=msgs, max_tokens=200, temperature=0, response_format=fmt)
    text = r.choices[0].message.content
    assert r.choices[0].finish_reason == "stop" and isinstance(json.loads(text), dict)
    streamed = "".join(ch.choices[0].delta.content or "" for ch in c.chat.completions.create(
        model=model_id, messages=msgs, max_tokens=200, temperature=0, response_format=fmt, stream=True))
    assert streamed == text
    r = c.chat.completions.create(model=model_id, messages=msgs, max_tokens=200, temperature=1.0, seed=3, n=3,
                                  response_format=fmt)
    for ch in r.choices:  # a complete object, or (cut by max_tokens) the start of one
        n, done = _core.json_scan(ch.message.content.encode())
        assert n == len(ch.message.content.encode())
        assert (ch.finish_reason == "stop") == done
        assert ch.finish_reason == "length" or isinstance(json.loads(ch.message.content), dict)
    plain = [c.chat.completions.create(model=model_id, messages=msgs, max_tokens=20, temperature=0, **kw)
             .choices[0].message.content for kw in ({}, {"response_format": {"type": "text"}})]
    assert plain[0] == plain[1] and not plain[0].startswith("{")
    r = c.completions.create(model=model_id, prompt="A JSON object about a dog:", max_tokens=100, temperature=0,
                             extra_body={"response_format": fmt})
    assert r.choices[0].finish_reason == "length" or isinstance(json.loads(r.choices[0].text), dict)
    unenforceable = {"type": "json_schema", "json_schema": {"name": "cat", "schema": {
        "type": "object", "properties": {"n": {"type": "array", "items": {"type": "integer"}, "uniqueItems": True}}}}}
    for bad in (unenforceable, {"type": "json_schema"}, {"type": "yaml"}, "json"):
        with pytest.raises(openai.BadRequestError) as e:
            c.chat.completions.create(model=model_id, messages=msgs, max_tokens=5, response_format=bad)
        assert e.value.body["param"] == "response_format"


def test_chat_structured_outputs(server, model_id):
    """response_format json_schema through the openai client: the reply is JSON the schema accepts,
    streamed or not; llama.cpp server's own 'json_schema' field does the same."""
    c = server.client()
    schema = {"type": "object", "additionalProperties": False, "required": ["name", "age", "color"],
              "properties": {"name": {"type": "string", "pattern": "^[A-Z][a-z]+$", "maxLength": 12},
                             "age": {"type": "integer", "minimum": 1, "maximum": 25},
                             "born": {"type": "string", "format": "date"},
                             "color": {"enum": ["black", "white", "ginger"]},
                             "toys": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
                             "vet": {"anyOf": [{"type": "string"}, {"type": "null"}]}}}
    fmt = {"type": "json_schema", "json_schema": {"name": "cat", "schema": schema, "strict": True}}
    msgs = [{"role": "user", "content": "Describe a cat in JSON."}]
    r = c.chat.completions.create(model=model_id, messages=msgs, max_tokens=120, temperature=0, response_format=fmt)
    text = r.choices[0].message.content
    assert r.choices[0].finish_reason == "stop"
    jsonschema.validate(json.loads(text), schema, format_checker=jsonschema.FormatChecker())
    streamed = "".join(ch.choices[0].delta.content or "" for ch in c.chat.completions.create(
        model=model_id, messages=msgs, max_tokens=120, temperature=0, response_format=fmt, stream=True)
        if ch.choices)
    assert streamed == text
    r = c.completions.create(model=model_id, prompt="A cat as JSON:", max_tokens=120, temperature=0.9, seed=2,
                             extra_body={"json_schema": schema, "response_format": {"type": "text"}})
    assert r.choices[0].finish_reason == "stop"
    jsonschema.validate(json.loads(r.choices[0].text), schema, format_checker=jsonschema.FormatChecker())


def test_guided_regex_and_choice(server, model_id):
    """vLLM's guided_choice and guided_regex: the whole output is one of the choices, or matches."""
    c = server.client()
    choices = ["positive", "negative", "neutral"]
    for seed in range(3):
        r = c.completions.create(model=model_id, prompt="Review: a fine film. Sentiment:", max_tokens=10,
                                 temperature=1.0, seed=seed, extra_body={"guided_choice": choices})
        assert r.choices[0].text in choices and r.choices[0].finish_reason == "stop"
    r = c.chat.completions.create(model=model_id, messages=[{"role": "user", "content": "Give a phone number."}],
                                  max_tokens=20, temperature=0, response_format={"type": "text"},  # no constraint
                                  extra_body={"guided_regex": r"\d{3}-\d{4}"})
    assert re.fullmatch(r"\d{3}-\d{4}", r.choices[0].message.content) and r.choices[0].finish_reason == "stop"
    streamed = "".join(ch.choices[0].delta.content or "" for ch in c.chat.completions.create(
        model=model_id, messages=[{"role": "user", "content": "Give a phone number."}], max_tokens=20,
        temperature=0, stream=True, extra_body={"guided_regex": r"\d{3}-\d{4}"}) if ch.choices)
    assert streamed == r.choices[0].message.content


def test_gbnf_grammar_fields(server, model_id):
    """llama.cpp's `grammar` and vLLM's `guided_grammar` (GBNF): the whole output is text the
    root derives; streamed the same; a reply held to a grammar is not split into reasoning."""
    from llmasos import _core
    from llmasos.gbnf import compile_grammar
    grammar = 'root ::= "Answer: " ("yes" | "no") "." | "Unsure."'
    g = compile_grammar(grammar)
    c = server.client()
    r = c.completions.create(model=model_id, prompt="Is water wet?", max_tokens=20, temperature=0,
                             extra_body={"grammar": grammar})
    text = r.choices[0].text
    assert text in ("Answer: yes.", "Answer: no.", "Unsure.") and r.choices[0].finish_reason == "stop"
    for seed in range(3):
        r = c.chat.completions.create(model=model_id, messages=[{"role": "user", "content": "Is water wet?"}],
                                      max_tokens=20, temperature=1.0, seed=seed,
                                      extra_body={"guided_grammar": grammar})
        assert _core.grammar_scan(g, r.choices[0].message.content.encode())[1:] == (True, True)
    streamed = "".join(ch.choices[0].text for ch in c.completions.create(
        model=model_id, prompt="Is water wet?", max_tokens=20, temperature=0, stream=True,
        extra_body={"grammar": grammar}))
    assert streamed == text
    # llama.cpp's default: an empty grammar is none.
    r = c.completions.create(model=model_id, prompt="Is water wet?", max_tokens=5, temperature=0,
                             extra_body={"grammar": ""})
    assert r.choices[0].finish_reason == "length"


def test_stop_strings_and_n(server, model_id):
    c = server.client()
    full = c.completions.create(model=model_id, prompt="One, two, three,", max_tokens=20, temperature=0).choices[0].text
    stop = full.split(",")[0] + "," if "," in full else full[:3]
    r = c.completions.create(model=model_id, prompt="One, two, three,", max_tokens=20, temperature=0, stop=[stop[-2:]])
    assert r.choices[0].finish_reason == "stop" and stop[-2:] not in r.choices[0].text
    r = c.completions.create(model=model_id, prompt="Hello", max_tokens=8, temperature=1.0, n=3, seed=5)
    assert len(r.choices) == 3 and sorted(ch.index for ch in r.choices) == [0, 1, 2]


@pytest.mark.parametrize("kwargs,param", [
    (dict(max_tokens=0), "max_tokens"), (dict(max_tokens=10 ** 9), "max_tokens"),
    (dict(temperature=-1), "temperature"), (dict(top_p=5), "top_p"), (dict(n=100), "n"),
    (dict(prompt=""), "prompt"), (dict(prompt=[]), "prompt"), (dict(prompt=[10 ** 9]), "prompt"),
    (dict(prompt="word " * 2000), "prompt"), (dict(logit_bias={"5": 1000}), "logit_bias"),
    (dict(logit_bias={"999999": 5}), "logit_bias"), (dict(logprobs=-1), "logprobs"),
    (dict(logprobs=21), "logprobs"), (dict(extra_body={"logprobs": True}), "logprobs"),
    (dict(echo="yes"), "echo"), (dict(extra_body={"top_logprobs": 2}), "top_logprobs"),
    (dict(extra_body={"presence_penalty": "high"}), "presence_penalty"),
    # "²".isdigit() is True in Python: such keys once reached int() and gave a 500.
    (dict(logit_bias={"\u00b2": 1}), "logit_bias"),
    # Ids the core's int32 cannot hold once gave a 500; negative ones were silently ignored.
    (dict(extra_body={"stop_token_ids": [2 ** 70]}), "stop_token_ids"),
    (dict(extra_body={"stop_token_ids": [-5]}), "stop_token_ids"),
    # Constraints other servers take: refused by name, not silently ignored.
    (dict(extra_body={"guided_choice": ["yes", 5]}), "guided_choice"),
    (dict(extra_body={"guided_regex": "(?=x)y"}), "guided_regex"),
    (dict(extra_body={"guided_regex": "a+", "guided_choice": ["a"]}), "guided_regex"),
    (dict(extra_body={"grammar": "root ::= nope"}), "grammar"),
    (dict(extra_body={"guided_grammar": 5}), "guided_grammar"),
    (dict(extra_body={"guided_grammar": "root ::= x\nx ::= x \"a\""}), "guided_grammar"),
    (dict(extra_body={"grammar": "root ::= \"a\"", "guided_regex": "a"}), "guided_regex"),
])
def test_bad_requests_are_clear_400s(server, model_id, kwargs, param):
    args = dict(model=model_id, prompt="Hi", max_tokens=4)
    args.update(kwargs)
    with pytest.raises(openai.BadRequestError) as e:
        server.client().completions.create(**args)
    assert e.value.status_code == 400
    assert e.value.body["param"] == param and e.value.body["message"]


def test_logit_bias_forces_a_token(server, model_id, smollm2_gguf):
    from llmasos import _core
    forced = 1234
    r = server.client().completions.create(model=model_id, prompt="The world is", max_tokens=3,
                                           temperature=0, logit_bias={str(forced): 100})
    assert r.choices[0].text == _core.Tokenizer.from_gguf(smollm2_gguf).decode([forced] * 3)
    assert r.choices[0].finish_reason == "length"


def test_tokenize_and_detokenize_as_vllm_and_llama_cpp(server, model_id, smollm2_gguf):
    """/tokenize and /detokenize answer vLLM's and llama.cpp's request shapes with the in-process
    tokenizer's ids; bad bodies are 400s."""
    from llmasos import LLM
    text = "Hello <|im_end|> world, 12345!"
    msgs = [{"role": "user", "content": "Name a color."}]
    with LLM.from_pretrained(smollm2_gguf, n_ctx=N_CTX) as llm:
        plain = llm.tokenize(text, add_bos=False, special=True)
        with_bos = llm.tokenize(text, special=True)  # the model's own BOS rule (none here)
        chat = llm.chat_prompt_ids(msgs)
        chat_no_gen = llm.chat_prompt_ids(msgs, add_generation_prompt=False)

    def post(path, body, status=200):
        r = httpx.post(server.base + path, json=body, timeout=30)
        assert r.status_code == status, r.text
        return r.json()

    vllm = post("/tokenize", {"model": model_id, "prompt": text, "return_token_strs": True})
    assert vllm["tokens"] == with_bos and vllm["count"] == len(with_bos) and vllm["max_model_len"] == N_CTX
    assert "".join(vllm["token_strs"]).endswith(text)
    assert post("/tokenize", {"prompt": text, "add_special_tokens": False})["tokens"] == plain
    pieces = post("/tokenize", {"content": text, "with_pieces": True})["tokens"]  # llama.cpp
    assert [p["id"] for p in pieces] == plain and "".join(p["piece"] for p in pieces) == text
    assert post("/tokenize", {"content": text, "add_special": True})["tokens"] == with_bos
    assert post("/tokenize", {"messages": msgs})["tokens"] == chat
    assert post("/tokenize", {"messages": msgs, "add_generation_prompt": False})["tokens"] == chat_no_gen
    back = post("/detokenize", {"model": model_id, "tokens": plain})
    assert back == {"prompt": text, "content": text}
    for body in [{}, {"prompt": text, "content": text}, {"prompt": 5}, {"messages": "hi"},
                 {"prompt": text, "with_pieces": "yes"}]:
        assert post("/tokenize", body, 400)["error"]["message"]
    for body in [{}, {"tokens": [1, -1]}, {"tokens": [10 ** 9]}, {"tokens": "1 2"}, {"tokens": [True]}]:
        assert post("/detokenize", body, 400)["error"]["param"] == "tokens"
    assert post("/tokenize", {"model": "other", "prompt": "x"}, 404)["error"]["code"] == "model_not_found"
    # vLLM's GET /tokenizer_info: lm-evaluation-harness's "remote" tokenizer takes a server that
    # answers it with an "eos_token", then reads the ids of that text through /tokenize.
    r = httpx.get(server.base + "/tokenizer_info", timeout=30)
    info = r.json()
    assert r.status_code == 200 and info["eos_token"] == "<|im_end|>" and info["model_max_length"] == N_CTX
    assert info["add_bos_token"] is False and "<|im_start|>" in info["chat_template"]
    with LLM.from_pretrained(smollm2_gguf, n_ctx=N_CTX) as llm:
        assert post("/tokenize", {"prompt": info["eos_token"], "add_special_tokens": False})["tokens"] == \
            [llm._model.eos_id]
        assert info["chat_template"] == llm.chat_template


def test_embeddings_with_the_openai_client(server, model_id, smollm2_gguf):
    """/v1/embeddings: the openai client (base64 by default) and plain float JSON give the vectors
    LLM.embed gives in process; bad inputs are 400s."""
    import numpy as np
    from llmasos import LLM
    texts = ["The cat sat on the mat.", "Stock prices fell sharply today."]
    with LLM.from_pretrained(smollm2_gguf, n_ctx=N_CTX) as llm:
        want = llm.embed(texts)
        ids = llm.tokenize(texts[0])
    r = server.client().embeddings.create(model=model_id, input=texts)
    got = np.array([d.embedding for d in r.data], dtype=np.float32)
    assert [d.index for d in r.data] == [0, 1] and got.tobytes() == want.tobytes()
    assert r.usage.prompt_tokens == r.usage.total_tokens > 0
    raw = httpx.post(server.base + "/v1/embeddings", json={"input": ids, "encoding_format": "float"}, timeout=60)
    assert raw.status_code == 200 and np.array(raw.json()["data"][0]["embedding"], np.float32).tobytes() == want[0].tobytes()
    for body, param in [({}, "input"), ({"input": ""}, "input"), ({"input": [[]]}, "input"),
                        ({"input": [10 ** 9]}, "input"), ({"input": "x", "encoding_format": "int8"}, "encoding_format"),
                        ({"input": "x", "dimensions": 3}, "dimensions"), ({"input": ["x"] * 2049}, "input")]:
        r = httpx.post(server.base + "/v1/embeddings", json=body, timeout=30)
        assert r.status_code == 400 and r.json()["error"]["param"] == param, (body, r.text)


def test_raw_bad_bodies(server):
    for body, status in [(b"{not json", 400), (b"[1, 2]", 400), (b"x" * (2 << 20), 413),
                         (json.dumps({"prompt": "hi", "model": "gpt-3"}).encode(), 404)]:
        r = httpx.post(server.base + "/v1/completions", content=body, timeout=30)
        assert r.status_code == status, (body[:20], r.text)
        assert r.json()["error"]["message"]
    r = httpx.post(server.base + "/v1/chat/completions", json={"messages": "hi"}, timeout=30)
    assert r.status_code == 400 and r.json()["error"]["param"] == "messages"
    # JSON lets a lone UTF-16 surrogate through; it is not text (each of these once gave a 500).
    for route, body in [("completions", b'{"prompt": "\\ud800 hi"}'),
                        ("completions", b'{"prompt": "hi", "model": "\\udfff"}'),
                        ("chat/completions", b'{"messages": [{"role": "user", "content": "\\ud800"}]}'),
                        ("chat/completions", b'{"messages": [{"role": "\\ud800", "content": "hi"}]}')]:
        r = httpx.post(f"{server.base}/v1/{route}", content=body, timeout=30)
        assert r.status_code == 400 and "surrogate" in r.json()["error"]["message"], (body, r.text)
    r = httpx.post(server.base + "/v1/chat/completions", timeout=30,
                   json={"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]})
    assert r.status_code == 400 and "text parts" in r.json()["error"]["message"]
    # Unknown routes and wrong methods answer in the same JSON shape, not plain text.
    for method, path, status in [("GET", "/v1/nothing", 404), ("GET", "/v1/completions", 405),
                                 ("POST", "/health", 405)]:
        r = httpx.request(method, server.base + path, timeout=30)
        assert r.status_code == status and path in r.json()["error"]["message"], r.text
    # The server still answers normally afterwards.
    assert server.client().completions.create(model=server.client().models.list().data[0].id,
                                              prompt="Hi", max_tokens=2).choices


def test_32_concurrent_streams_match_alone(server, model_id):
    prompts = [f"Item {i}: the {w} is" for i, w in enumerate(["sky", "sea", "tree", "road"] * 8)]
    c = server.client()
    alone = {p: c.completions.create(model=model_id, prompt=p, max_tokens=12, temperature=0).choices[0].text
             for p in prompts[:8]}

    def stream(p):
        return "".join(ch.choices[0].text for ch in server.client().completions.create(
            model=model_id, prompt=p, max_tokens=12, temperature=0, stream=True))

    with concurrent.futures.ThreadPoolExecutor(32) as ex:
        got = list(ex.map(stream, prompts))
    for p, text in zip(prompts, got):
        if p in alone:
            assert text == alone[p], p
    for p, text in zip(prompts[8:], got[8:]):  # the rest: equal to their own solo runs
        assert text == c.completions.create(model=model_id, prompt=p, max_tokens=12, temperature=0).choices[0].text
    wait_idle(server)


def disconnect_mid_stream(server, path, body, after=5):
    """Streams a long request on `path`, closes the connection once past line `after`, and
    checks that the server's KV pool comes back to its idle size."""
    idle = wait_idle(server)
    with httpx.stream("POST", server.base + path, json={**body, "stream": True, "ignore_eos": True},
                      timeout=60) as r:
        for i, _ in enumerate(r.iter_lines()):
            if i > after:
                break  # close the connection mid-stream
    assert wait_idle(server)["llmasos_kv_blocks_free"] == idle["llmasos_kv_blocks_free"]


def test_disconnect_mid_stream_frees_blocks(server, model_id):
    disconnect_mid_stream(server, "/v1/completions", {"prompt": "Tell a long story:", "max_tokens": 500})


def test_many_clients_disconnecting_free_their_blocks(server, model_id):
    """16 clients at once: some close their stream after a few events, some give up on a
    non-streamed answer (a client timeout), the rest finish. Every abandoned sequence is cancelled
    (a non-streamed one too: 900 tokens each would keep the engine busy for tens of seconds), the
    finished ones equal their solo runs, and the pool returns to idle."""
    idle = wait_idle(server)
    before = closed_requests(server)
    c = server.client()
    prompts = [f"Client {i} asks: what is {i} + {i}?" for i in range(16)]
    solo = {i: c.completions.create(model=model_id, prompt=prompts[i], max_tokens=8, temperature=0).choices[0].text
            for i in range(16) if i % 4 >= 2}
    long = {"max_tokens": 900, "ignore_eos": True, "temperature": 0}

    def client(i):
        if i % 4 == 0:  # streams, then hangs up after i % 5 events
            with httpx.stream("POST", server.base + "/v1/completions", timeout=60,
                              json={"prompt": prompts[i], "stream": True, **long}) as r:
                for k, _ in enumerate(r.iter_lines()):
                    if k >= i % 5:
                        break
            return None
        if i % 4 == 1:  # gives up waiting for a non-streamed answer
            with pytest.raises(httpx.ReadTimeout):
                httpx.post(server.base + "/v1/completions", json={"prompt": prompts[i], **long}, timeout=1.0)
            return None
        return "".join(ch.choices[0].text for ch in server.client().completions.create(
            model=model_id, prompt=prompts[i], max_tokens=8, temperature=0, stream=True))

    with concurrent.futures.ThreadPoolExecutor(16) as ex:
        got = list(ex.map(client, range(16)))
    for i, text in solo.items():
        assert got[i] == text, i
    m = wait_idle(server, timeout=15)
    assert m["llmasos_kv_blocks_free"] == idle["llmasos_kv_blocks_free"]
    deadline = time.time() + 10  # the 4 abandoned non-streamed requests, counted as 499
    while closed_requests(server) - before < 4 and time.time() < deadline:
        time.sleep(0.1)
    assert closed_requests(server) - before == 4


def test_client_gone_before_its_body_is_499(server):
    """A client that closes after sending half its body: counted as 499, not as a server error."""
    before = closed_requests(server)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 100\r\n\r\n{\"prompt\": ")
    deadline = time.time() + 10
    while closed_requests(server) == before and time.time() < deadline:
        time.sleep(0.05)
    assert closed_requests(server) == before + 1
    with urllib.request.urlopen(server.base + "/metrics", timeout=10) as r:
        assert 'status="500"' not in r.read().decode()


def closed_requests(server):
    """/metrics' count of completions requests whose client went away first (status 499)."""
    with urllib.request.urlopen(server.base + "/metrics", timeout=10) as r:
        m = re.search(r'^llmasos_requests_total\{route="/v1/completions",status="499"\} ([0-9.]+)$',
                      r.read().decode(), re.M)
    return float(m.group(1)) if m else 0.0


def test_prefix_cache_hit(server, model_id):
    c = server.client()
    long_prefix = "The history of the city begins in ancient times, when traders " * 12
    before = server.metrics()
    c.completions.create(model=model_id, prompt=long_prefix + "first", max_tokens=2, temperature=0)
    c.completions.create(model=model_id, prompt=long_prefix + "second", max_tokens=2, temperature=0)
    after = server.metrics()
    assert after["llmasos_prefix_cache_hits"] > before["llmasos_prefix_cache_hits"]


def test_api_key_guards_v1(smollm2_gguf):
    s = RunningServer(smollm2_gguf, "--api-key", "sekret")
    try:
        with pytest.raises(openai.AuthenticationError):
            s.client("wrong").models.list()
        assert s.client("sekret").models.list().data
        with urllib.request.urlopen(s.base + "/health") as r:  # not under /v1
            assert r.status == 200
        # The tokenizer routes read the model too: guarded as /v1 is.
        for path, body in [("/tokenize", {"prompt": "hi"}), ("/detokenize", {"tokens": [1]}),
                           ("/tokenizer_info", None)]:
            call = httpx.get if body is None else functools.partial(httpx.post, json=body)
            assert call(s.base + path, timeout=30).status_code == 401
            ok = call(s.base + path, timeout=30, headers={"Authorization": "Bearer sekret"})
            assert ok.status_code == 200, ok.text
    finally:
        s.stop()


# -- logprobs ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def local_llm(smollm2_gguf):
    """The same model in this process: the reference for the server's logprobs."""
    from llmasos import LLM
    with LLM.from_pretrained(smollm2_gguf, n_ctx=N_CTX, threads=2) as m:
        yield m


def reference_logprobs(llm, prompt_ids, n):
    """Greedy ids after prompt_ids and the log-softmax of LLM.logits() at each of their positions."""
    import numpy as np
    from llmasos import SamplingParams
    ids = llm.generate(prompt_ids, SamplingParams(max_tokens=n))[0].token_ids
    rows = llm.logits(prompt_ids + ids[:-1])[len(prompt_ids) - 1:].astype(np.float64)
    m = rows.max(axis=1, keepdims=True)
    return ids, rows - m - np.log(np.exp(rows - m).sum(axis=1, keepdims=True))


def check_top(pairs, ref_row, k):
    """pairs: (text, logprob) most likely first, as many as asked, equal to the reference's top k."""
    values = [lp for _, lp in pairs]
    assert len(pairs) == k and values == sorted(values, reverse=True)
    assert max(abs(a - b) for a, b in zip(values, sorted(ref_row, reverse=True)[:k])) < 1e-4


def test_completion_logprobs_match_logits(server, model_id, local_llm):
    prompt = "The capital of France is"
    ids, ref = reference_logprobs(local_llm, local_llm.tokenize(prompt), 10)
    c = server.client()
    r = c.completions.create(model=model_id, prompt=prompt, max_tokens=10, temperature=0, logprobs=5)
    ch = r.choices[0]
    lp = ch.logprobs
    assert ch.finish_reason == "length" and len(lp.tokens) == len(ids) == 10
    assert lp.tokens == [local_llm._pieces().text(t) for t in ids] and "".join(lp.tokens) == ch.text
    assert lp.text_offset == [len("".join(lp.tokens[:i])) for i in range(len(ids))]
    for i, t in enumerate(ids):
        assert abs(lp.token_logprobs[i] - ref[i, t]) < 1e-4
        top = sorted(lp.top_logprobs[i].items(), key=lambda kv: -kv[1])
        check_top(top, ref[i], 5)
        assert top[0] == (lp.tokens[i], lp.token_logprobs[i])  # greedy: the sampled token is the top-1
    # Streaming: each chunk carries its tokens' logprobs; together they are the same.
    got = {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}
    for chunk in c.completions.create(model=model_id, prompt=prompt, max_tokens=10, temperature=0,
                                      logprobs=5, stream=True):
        piece = chunk.choices[0].logprobs
        for key in got:
            got[key] += getattr(piece, key)
    assert got == {key: getattr(lp, key) for key in got}
    # logprobs=0: the sampled token's only; no logprobs asked: none given.
    r0 = c.completions.create(model=model_id, prompt=prompt, max_tokens=10, temperature=0, logprobs=0)
    assert r0.choices[0].logprobs.token_logprobs == lp.token_logprobs
    assert all(len(d) == 1 for d in r0.choices[0].logprobs.top_logprobs)
    assert c.completions.create(model=model_id, prompt=prompt, max_tokens=2).choices[0].logprobs is None


def test_echo_logprobs_score_the_prompt(server, model_id, local_llm):
    """echo with logprobs reports the prompt's own tokens first (the first with null logprob), and
    max_tokens 0 with echo scores the prompt alone: lm-evaluation-harness's loglikelihood requests
    (token-id prompts, several per request)."""
    import numpy as np
    c = server.client()
    texts = ["The capital of France is Paris.", "Water boils at 100 degrees."]
    prompts = [local_llm.tokenize(t) for t in texts]
    r = c.completions.create(model=model_id, prompt=prompts, max_tokens=0, echo=True, logprobs=3,
                             temperature=0)
    assert [ch.index for ch in r.choices] == [0, 1]
    assert r.usage.prompt_tokens == sum(map(len, prompts)) and r.usage.completion_tokens == 0
    for ch, ids in zip(r.choices, prompts):
        lp = ch.logprobs
        assert ch.text == local_llm.detokenize(ids) and len(lp.tokens) == len(ids)
        assert lp.token_logprobs[0] is None and lp.top_logprobs[0] is None
        rows = local_llm.logits(ids).astype(np.float64)
        m = rows.max(axis=1, keepdims=True)
        ref = rows - m - np.log(np.exp(rows - m).sum(axis=1, keepdims=True))
        for i in range(1, len(ids)):
            assert abs(lp.token_logprobs[i] - ref[i - 1, ids[i]]) < 1e-5
            top = sorted(lp.top_logprobs[i].items(), key=lambda kv: -kv[1])
            assert len(top) in (3, 4) and abs(top[0][1] - ref[i - 1].max()) < 1e-5
        assert lp.text_offset == [len(local_llm.detokenize(ids[:i])) for i in range(len(ids))]
    # Echo while generating: the prompt's entries, then exactly the entries the same request gets
    # without echo, their offsets moved past the echoed text; streamed, the same lists.
    plain = c.completions.create(model=model_id, prompt=texts[0], max_tokens=5, temperature=0, logprobs=2)
    echoed = c.completions.create(model=model_id, prompt=texts[0], max_tokens=5, temperature=0, logprobs=2,
                                  echo=True)
    n_p, shift = len(prompts[0]), len(local_llm.detokenize(prompts[0]))
    a, b = plain.choices[0].logprobs, echoed.choices[0].logprobs
    assert echoed.choices[0].text == local_llm.detokenize(prompts[0]) + plain.choices[0].text
    assert b.tokens[n_p:] == a.tokens and b.token_logprobs[n_p:] == a.token_logprobs
    assert b.top_logprobs[n_p:] == a.top_logprobs and b.text_offset[n_p:] == [o + shift for o in a.text_offset]
    got = {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}
    for chunk in c.completions.create(model=model_id, prompt=texts[0], max_tokens=5, temperature=0,
                                      logprobs=2, echo=True, stream=True):
        for key in got:
            got[key] += getattr(chunk.choices[0].logprobs, key)
    assert got == {key: getattr(b, key) for key in got}
    # max_tokens 0 asks for nothing without echo, and is not streamed.
    for extra in [{}, {"echo": True, "stream": True}]:
        with pytest.raises(openai.BadRequestError):
            c.completions.create(model=model_id, prompt="hi", max_tokens=0, **extra)


def test_end_token_logprob_is_reported(server, model_id, local_llm):
    """A completion that ends at the end-of-generation token (or a stop_token_ids one) reports that
    token's logprob last, its text not in `text` (OpenAI's and vLLM's completions do): with echo
    and max_tokens 1, lm-evaluation-harness reads every logprob but the last as the text's. Chat's
    content lists only the reply's tokens. logit_bias makes the end token the greedy choice; the
    logprobs stay the raw model's."""
    import numpy as np
    from llmasos import SamplingParams
    m = local_llm._model
    eos, pieces = m.eos_id, local_llm._pieces()
    prompt = "The capital of France is"
    ids = local_llm.tokenize(prompt)
    row = local_llm.logits(ids)[-1].astype(np.float64)
    ref = row - row.max() - np.log(np.exp(row - row.max()).sum())
    c = server.client()
    args = dict(model=model_id, prompt=prompt, max_tokens=5, temperature=0, logprobs=2,
                logit_bias={str(eos): 100})
    ch = c.completions.create(**args).choices[0]
    lp = ch.logprobs
    assert (ch.text, ch.finish_reason) == ("", "stop")
    assert lp.tokens == [pieces.text(eos)] and lp.text_offset == [0]
    assert abs(lp.token_logprobs[0] - ref[eos]) < 1e-4
    assert len(lp.top_logprobs[0]) == 3 and abs(max(lp.top_logprobs[0].values()) - ref.max()) < 1e-4
    got = {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}
    for chunk in c.completions.create(stream=True, **args):
        for key in got:
            got[key] += getattr(chunk.choices[0].logprobs, key)
    assert got == {key: getattr(lp, key) for key in got}
    # lm-evaluation-harness's loglikelihood: echo, max_tokens 1; the end token comes last.
    scored = c.completions.create(model=model_id, prompt=ids, max_tokens=0, echo=True, logprobs=1).choices[0]
    ech = c.completions.create(**{**args, "prompt": ids, "max_tokens": 1, "echo": True}).choices[0]
    assert ech.text == scored.text and ech.finish_reason == "stop"
    assert ech.logprobs.token_logprobs[:-1] == scored.logprobs.token_logprobs
    assert ech.logprobs.tokens[-1] == pieces.text(eos) and len(ech.logprobs.tokens) == len(ids) + 1
    assert ech.logprobs.text_offset[-1] == len(scored.text)
    # After some text, its offset is the text's end; a stop_token_ids token is reported the same.
    free = c.completions.create(model=model_id, prompt=prompt, max_tokens=4, temperature=0, logprobs=0).choices[0]
    toks = free.logprobs.tokens
    stop_id = local_llm.generate(prompt, SamplingParams(max_tokens=1))[0].token_ids[0]
    assert pieces.text(stop_id) == toks[0] and not m.is_eog(stop_id)
    st = c.completions.create(model=model_id, prompt=prompt, max_tokens=4, temperature=0, logprobs=0,
                              extra_body={"stop_token_ids": [stop_id]}).choices[0]
    assert (st.text, st.finish_reason, st.logprobs.tokens) == ("", "stop", toks[:1])
    assert st.logprobs.token_logprobs == free.logprobs.token_logprobs[:1]
    # Chat: the reply's tokens only.
    msgs = [{"role": "user", "content": "Hi"}]
    r = c.chat.completions.create(model=model_id, messages=msgs, max_tokens=5, temperature=0, logprobs=True,
                                  logit_bias={str(eos): 100}).choices[0]
    assert (r.message.content, r.finish_reason, r.logprobs.content) == ("", "stop", [])
    assert c.completions.create(**{**args, "logprobs": None}).choices[0].logprobs is None


def test_stop_reason_in_choices(server, model_id, local_llm):
    """vLLM's stop_reason: the stop string or stop_token_ids token that ended a choice, else null;
    streamed, on the chunk that finishes it."""
    import httpx
    prompt = "One, two, three,"
    greedy = local_llm.generate(prompt, llmasos_params(max_tokens=8, ignore_eos=True))[0]
    word, tok = greedy.text.split()[1], greedy.token_ids[2]

    def post(route, stream=False, **body):
        body = {"model": model_id, "max_tokens": 8, "temperature": 0, "stream": stream, **body}
        if route == "/v1/chat/completions":
            body["messages"] = [{"role": "user", "content": prompt}]
        else:
            body["prompt"] = prompt
        r = httpx.post(server.base + route, json=body, timeout=60)
        assert r.status_code == 200, r.text
        if not stream:
            return r.json()["choices"][0]
        chunks = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: {")]
        return [c["choices"][0] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]][0]

    for stream in (False, True):
        ch = post("/v1/completions", stream, stop=[word])
        assert (ch["finish_reason"], ch["stop_reason"]) == ("stop", word)
        ch = post("/v1/completions", stream, stop_token_ids=[tok])
        assert (ch["finish_reason"], ch["stop_reason"]) == ("stop", tok)
        ch = post("/v1/completions", stream, ignore_eos=True, max_tokens=2)
        assert (ch["finish_reason"], ch["stop_reason"]) == ("length", None)
        chat = post("/v1/chat/completions", stream, ignore_eos=True, max_tokens=3)
        assert (chat["finish_reason"], chat["stop_reason"]) == ("length", None)
        first = local_llm.chat([{"role": "user", "content": prompt}], llmasos_params(max_tokens=1)).token_ids[0]
        chat = post("/v1/chat/completions", stream, stop_token_ids=[first])
        assert (chat["finish_reason"], chat["stop_reason"]) == ("stop", first)


def test_prompt_logprobs_field(server, model_id, local_llm):
    """vLLM's prompt_logprobs request field: per choice on completions (each prompt's own), on the
    response on chat; null for the first token, then {id: {logprob, rank, decoded_token}}, equal
    to SamplingParams.prompt_logprobs in Python and to echo's logprobs."""
    import httpx
    texts = ["The capital of France is Paris.", "Water boils at"]
    prompts = [local_llm.tokenize(t) for t in texts]

    def post(route, **body):
        return httpx.post(server.base + route, json={"model": model_id, "max_tokens": 1, **body}, timeout=60)

    r = post("/v1/completions", prompt=prompts, n=2, prompt_logprobs=2, echo=True, logprobs=2)
    assert r.status_code == 200, r.text
    choices = r.json()["choices"]
    assert len(choices) == 4
    for ch in choices:
        ids = prompts[ch["index"] // 2]
        ref = local_llm.generate(ids, llmasos_params(max_tokens=1, prompt_logprobs=2))[0].prompt_logprobs
        pl = ch["prompt_logprobs"]
        assert len(pl) == len(ids) and pl[0] is None
        for i in range(1, len(ids)):
            assert list(pl[i]) == [str(t) for t in ref[i]]
            assert [(e["logprob"], e["rank"], e["decoded_token"]) for e in pl[i].values()] == \
                [(lp.logprob, lp.rank, lp.decoded_token) for lp in ref[i].values()]
            assert pl[i][str(ids[i])]["logprob"] == ch["logprobs"]["token_logprobs"][i]
    plain = post("/v1/completions", prompt=texts[1], prompt_logprobs=0).json()["choices"][0]
    assert [None if d is None else list(d) for d in plain["prompt_logprobs"]] == \
        [None] + [[str(t)] for t in prompts[1][1:]]
    msgs = [{"role": "user", "content": "Hi"}]
    chat = post("/v1/chat/completions", messages=msgs, prompt_logprobs=1).json()
    assert len(chat["prompt_logprobs"]) == len(local_llm.chat_prompt_ids(msgs))
    assert "prompt_logprobs" not in post("/v1/chat/completions", messages=msgs).json()
    for route, extra in (("/v1/completions", {"prompt": "Hi"}), ("/v1/chat/completions", {"messages": msgs})):
        for bad in ({"prompt_logprobs": 21}, {"prompt_logprobs": "2"}, {"prompt_logprobs": 1, "stream": True}):
            r = post(route, **extra, **bad)
            assert r.status_code == 400 and r.json()["error"]["param"] == "prompt_logprobs", r.text


def llmasos_params(**kw):
    from llmasos import SamplingParams
    return SamplingParams(**kw)


def test_chat_logprobs_match_logits(server, model_id, local_llm):
    msgs = [{"role": "user", "content": "Name a color."}]
    ids, ref = reference_logprobs(local_llm, local_llm.chat_prompt_ids(msgs), 8)
    c = server.client()
    r = c.chat.completions.create(model=model_id, messages=msgs, max_tokens=8, temperature=0,
                                  logprobs=True, top_logprobs=3)
    content = r.choices[0].logprobs.content
    assert "".join(e.token for e in content) == r.choices[0].message.content
    for i, (e, t) in enumerate(zip(content, ids)):
        assert bytes(e.bytes) == local_llm._model.token_bytes(t, True)
        assert e.token == bytes(e.bytes).decode("utf-8", errors="replace")
        assert abs(e.logprob - ref[i, t]) < 1e-4
        check_top([(a.token, a.logprob) for a in e.top_logprobs], ref[i], 3)
        assert (e.top_logprobs[0].token, e.top_logprobs[0].logprob) == (e.token, e.logprob)
        assert all(bytes(a.bytes).decode("utf-8", errors="replace") == a.token for a in e.top_logprobs)
    streamed = []
    for chunk in c.chat.completions.create(model=model_id, messages=msgs, max_tokens=8, temperature=0,
                                           logprobs=True, top_logprobs=3, stream=True):
        if chunk.choices[0].logprobs is not None:
            streamed += chunk.choices[0].logprobs.content
    assert [e.model_dump() for e in streamed] == [e.model_dump() for e in content]
    plain = c.chat.completions.create(model=model_id, messages=msgs, max_tokens=8, temperature=0, logprobs=True)
    assert [(e.token, e.logprob, e.top_logprobs) for e in plain.choices[0].logprobs.content] == \
        [(e.token, e.logprob, []) for e in content]
    assert c.chat.completions.create(model=model_id, messages=msgs, max_tokens=2).choices[0].logprobs is None


def test_logprobs_stop_at_the_returned_text(server, model_id):
    """Tokens lying wholly inside a stop string that cut the text are not reported."""
    c = server.client()
    prompt, args = "One, two, three,", dict(max_tokens=20, temperature=0, logprobs=2)
    full = c.completions.create(model=model_id, prompt=prompt, **args).choices[0]
    stop = full.logprobs.tokens[4]  # a whole token of the text: its logprob must go too
    assert stop.strip() and full.text.index(stop) == full.logprobs.text_offset[4]
    for stream in (False, True):
        if stream:
            chunks = list(c.completions.create(model=model_id, prompt=prompt, stop=[stop], stream=True, **args))
            text = "".join(ch.choices[0].text for ch in chunks)
            tokens = [t for ch in chunks for t in ch.choices[0].logprobs.tokens]
        else:
            ch = c.completions.create(model=model_id, prompt=prompt, stop=[stop], **args).choices[0]
            assert ch.finish_reason == "stop"
            text, tokens = ch.text, ch.logprobs.tokens
        assert text == full.text[:full.logprobs.text_offset[4]]
        assert tokens == full.logprobs.tokens[:4]


@pytest.mark.parametrize("kwargs,param", [
    (dict(top_logprobs=2), "top_logprobs"), (dict(logprobs=False, top_logprobs=2), "top_logprobs"),
    (dict(logprobs=True, top_logprobs=21), "top_logprobs"), (dict(logprobs=True, top_logprobs=-1), "top_logprobs"),
    (dict(logprobs="yes"), "logprobs"), (dict(logprobs=3), "logprobs"),
])
def test_bad_chat_logprobs_are_clear_400s(server, model_id, kwargs, param):
    with pytest.raises(openai.BadRequestError) as e:
        server.client().chat.completions.create(model=model_id, messages=[{"role": "user", "content": "Hi"}],
                                                max_tokens=2, **kwargs)
    assert e.value.status_code == 400
    assert e.value.body["param"] == param and param in e.value.body["message"]


def test_logprobs_of_tokens_that_split_characters(server, model_id):
    """Byte-level tokens holding part of a UTF-8 character: raw bytes, U+FFFD in the text."""
    c = server.client()
    msgs = [{"role": "user", "content": "Write three emoji"}]
    r = c.chat.completions.create(model=model_id, messages=msgs, max_tokens=8, temperature=0,
                                  logprobs=True, top_logprobs=2)
    content = r.choices[0].logprobs.content
    raw = b"".join(bytes(e.bytes) for e in content)  # the text, with a character cut at the end
    assert raw.decode("utf-8", errors="replace") == r.choices[0].message.content
    partial = [e for e in content if "\ufffd" in e.token]
    assert partial, "the model's answer is expected to hold multi-byte characters split over tokens"
    ch = c.completions.create(model=model_id, prompt="Japanese: 日本語の", max_tokens=6, temperature=0,
                              logprobs=2).choices[0]
    lp = ch.logprobs
    for tok, value, top in zip(lp.tokens, lp.token_logprobs, lp.top_logprobs):
        assert top[tok] == value  # greedy: the sampled token is the most likely of its text
    assert lp.text_offset == sorted(lp.text_offset) and lp.text_offset[-1] < len(ch.text)


def test_internal_error_is_a_json_500_and_counted(local_llm, monkeypatch):
    """A failure inside the server (here the tokenizer raising, as a bug would) answers a JSON 500
    that OpenAI clients parse, counts it in /metrics, and the next request is served normally."""
    from starlette.testclient import TestClient
    from llmasos.server import Server

    calls = []

    def broken(text, *a, **k):
        calls.append(text)
        raise RuntimeError("boom")

    with TestClient(Server(local_llm, "m").app, raise_server_exceptions=False) as client:
        with monkeypatch.context() as m:
            m.setattr(local_llm, "tokenize", broken)
            r = client.post("/v1/completions", json={"prompt": "Hi", "max_tokens": 2})
        assert r.status_code == 500 and calls == ["Hi"]
        assert r.json()["error"]["type"] == "internal_error" and "RuntimeError" in r.json()["error"]["message"]
        assert 'route="/v1/completions",status="500"' in client.get("/metrics").text
        r = client.post("/v1/completions", json={"prompt": "Hi", "max_tokens": 2})
        assert r.status_code == 200 and r.json()["choices"][0]["text"]


def test_stream_failure_ends_with_an_error_event(local_llm, monkeypatch):
    """A failure after a stream has started (headers sent) arrives as an error event followed by
    [DONE], so the client sees why instead of a cut connection."""
    from starlette.testclient import TestClient
    from llmasos.server import Server

    srv = Server(local_llm, "m")
    real = srv.engine.generate

    async def fails_after_one(ids, params):
        async for d in real(ids, params):
            yield d
            raise RuntimeError("boom")

    monkeypatch.setattr(srv.engine, "generate", fails_after_one)
    with TestClient(srv.app, raise_server_exceptions=False) as client:
        r = client.post("/v1/completions", json={"prompt": "Hi", "max_tokens": 4, "stream": True})
        events = [line[6:] for line in r.text.splitlines() if line.startswith("data: ")]
        assert r.status_code == 200 and events[-1] == "[DONE]"
        assert json.loads(events[0])["choices"] and json.loads(events[-2])["error"]["type"] == "internal_error"
        deadline = time.time() + 30  # and the failed request's KV blocks are freed
        while srv.engine.stats()["blocks_used"] and time.time() < deadline:
            time.sleep(0.05)
        assert srv.engine.stats()["blocks_used"] == 0 and srv.engine.stats()["running"] == 0


def test_failed_engine_step_fails_its_requests_only(local_llm):
    """A step that raises (as a bug in the engine would) ends the requests in flight with an error
    (a JSON 500 here) and frees their blocks; the engine thread lives on and serves the next one."""
    from starlette.testclient import TestClient
    from llmasos.server import Server

    class FailsOnce:
        def __init__(self, inner):
            self.inner, self.armed = inner, True

        def step(self):
            if self.armed:
                self.armed = False
                raise RuntimeError("step failed")
            return self.inner.step()

        def __getattr__(self, name):
            return getattr(self.inner, name)

    srv = Server(local_llm, "m")
    srv.engine.engine = FailsOnce(srv.engine.engine)
    with TestClient(srv.app, raise_server_exceptions=False) as client:
        r = client.post("/v1/completions", json={"prompt": "Hi", "max_tokens": 4})
        assert r.status_code == 500 and "RuntimeError" in r.json()["error"]["message"]
        assert srv.engine.stats()["blocks_used"] == 0
        r = client.post("/v1/completions", json={"prompt": "Hi", "max_tokens": 4, "stream": True})
        assert r.status_code == 200 and r.text.rstrip().endswith("data: [DONE]") and "error" not in r.text
        r = client.post("/v1/completions", json={"prompt": "Hi", "max_tokens": 4})
        assert r.status_code == 200 and r.json()["choices"][0]["text"]
