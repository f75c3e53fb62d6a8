"""The OpenAI-compatible server, run for real on 127.0.0.1 and driven with the `openai` client:
completions, chat, streaming, models, errors, concurrency, cancellation, prefix caching."""
import concurrent.futures
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

openai = pytest.importorskip("openai")
httpx = pytest.importorskip("httpx")

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
def server(smollm2_gguf):
    s = RunningServer(smollm2_gguf)
    yield s
    s.stop()


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
    (dict(logit_bias={"999999": 5}), "logit_bias"), (dict(logprobs=2), "logprobs"),
    (dict(extra_body={"presence_penalty": "high"}), "presence_penalty"),
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


def test_raw_bad_bodies(server):
    for body, status in [(b"{not json", 400), (b"[1, 2]", 400), (b"x" * (2 << 20), 413),
                         (json.dumps({"prompt": "hi", "model": "gpt-3"}).encode(), 404)]:
        r = httpx.post(server.base + "/v1/completions", content=body, timeout=30)
        assert r.status_code == status, (body[:20], r.text)
        assert r.json()["error"]["message"]
    r = httpx.post(server.base + "/v1/chat/completions", json={"messages": "hi"}, timeout=30)
    assert r.status_code == 400 and r.json()["error"]["param"] == "messages"
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


def test_disconnect_mid_stream_frees_blocks(server, model_id):
    idle = wait_idle(server)
    with httpx.stream("POST", server.base + "/v1/completions",
                      json={"prompt": "Tell a long story:", "max_tokens": 500, "stream": True,
                            "ignore_eos": True}, timeout=60) as r:
        for i, _ in enumerate(r.iter_lines()):
            if i > 5:
                break  # close the connection mid-stream
    m = wait_idle(server)
    assert m["llmasos_kv_blocks_free"] == idle["llmasos_kv_blocks_free"]


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
    finally:
        s.stop()
