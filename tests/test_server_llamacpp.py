"""llama.cpp server's own routes on the real server (/completion, /props, /apply-template,
/embedding, the OpenAI routes without /v1), as a
client written for llama-server calls them: the text equals the OpenAI route's for the same
request, whole and streamed; llama.cpp's prompt shapes, defaults, stop types, logit_bias forms and
n_probs; bad requests are 4xx naming the field."""
import json

import httpx
import pytest

from llmasos import LLM
from test_server import RunningServer, disconnect_mid_stream

PROMPT = "The capital of France is"


@pytest.fixture(scope="module")
def llm(smollm2_gguf):
    with LLM.from_pretrained(smollm2_gguf, n_ctx=1024, threads=1) as m:
        yield m


def post(server, path, body, status=200):
    r = httpx.post(server.base + path, json=body, timeout=120)
    assert r.status_code == status, r.text
    return r.json() if status == 200 else r.json()["error"]


def openai_completion(server, **body):
    return post(server, "/v1/completions", {"prompt": PROMPT, "max_tokens": 12, "temperature": 0, **body})["choices"][0]


def events(server, body):
    r = httpx.post(server.base + "/completion", json={**body, "stream": True}, timeout=120)
    assert r.status_code == 200, r.text
    assert "[DONE]" not in r.text
    return [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: ")]


def test_completion_equals_openai_route_whole_and_streamed(server, llm):
    want = openai_completion(server)
    r = post(server, "/completion", {"prompt": PROMPT, "n_predict": 12, "temperature": 0, "return_tokens": True})
    assert r["content"] == want["text"] and r["stop"] is True and r["stop_type"] == "limit"
    assert r["tokens_predicted"] == 12 and llm.detokenize(r["tokens"]) == r["content"]
    assert r["tokens_evaluated"] == len(llm.tokenize(PROMPT)) and r["prompt"] == PROMPT
    assert r["generation_settings"]["n_ctx"] == 1024 and r["timings"]["predicted_n"] == 12
    evs = events(server, {"prompt": PROMPT, "n_predict": 12, "temperature": 0})
    assert all(not e["stop"] for e in evs[:-1]) and evs[-1]["stop"] and evs[-1]["stop_type"] == "limit"
    # The last event has the result's fields but not its text again (clients add the pieces up).
    assert "".join(e["content"] for e in evs) == want["text"] and evs[-1]["content"] == "" == "".join(evs[-1]["tokens"])
    assert sum(len(e["tokens"]) for e in evs[:-1]) == 12


def test_llamacpp_defaults_and_seed(server):
    """Absent fields take llama.cpp's defaults (temperature 0.8, top_k 40, top_p 0.95, min_p
    0.05): a seeded /completion equals the OpenAI route given them; seed -1 is unseeded."""
    want = openai_completion(server, temperature=0.8, top_k=40, top_p=0.95, min_p=0.05, seed=11)
    assert post(server, "/completion", {"prompt": PROMPT, "n_predict": 12, "seed": 11})["content"] == want["text"]
    r = post(server, "/completion", {"prompt": PROMPT, "n_predict": 4, "seed": -1})
    assert r["generation_settings"]["seed"] == 0xFFFFFFFF and r["generation_settings"]["temperature"] == 0.8
    # Below zero, temperature is greedy.
    assert post(server, "/completion", {"prompt": PROMPT, "n_predict": 12, "temperature": -1})["content"] == \
        openai_completion(server)["text"]


def test_prompt_shapes(server, llm):
    ids = llm.tokenize(PROMPT)
    greedy = {"n_predict": 6, "temperature": 0}
    whole = post(server, "/completion", {"prompt": PROMPT, **greedy})["content"]
    assert post(server, "/completion", {"prompt": ids, **greedy})["content"] == whole
    # Ids and text mixed: the text after the ids is tokenized without a BOS.
    mixed = post(server, "/completion", {"prompt": ids[:2] + [llm.detokenize(ids[2:])], **greedy})
    assert mixed["tokens_evaluated"] == len(ids[:2] + llm.tokenize(llm.detokenize(ids[2:]), add_bos=False))
    several = post(server, "/completion", {"prompt": [PROMPT, ids, "Hello"], **greedy})
    assert [r["index"] for r in several] == [0, 1, 2] and several[0]["content"] == several[1]["content"] == whole
    assert several[2]["content"] == post(server, "/completion", {"prompt": "Hello", **greedy})["content"]


def test_stop_types_and_logit_bias(server, llm):
    r = post(server, "/completion", {"prompt": "Count: 1, 2,", "n_predict": 20, "temperature": 0, "stop": [" 5"]})
    assert r["stop_type"] == "word" and r["stopping_word"] == " 5" and not r["content"].endswith(" 5")
    eos = llm._core().eos_id
    r = post(server, "/completion", {"prompt": PROMPT, "n_predict": 5, "temperature": 0, "logit_bias": [[eos, 100]]})
    assert r["stop_type"] == "eos" and r["content"] == "" and r["stopping_word"] == ""
    first = llm.tokenize(openai_completion(server)["text"], add_bos=False)[0]
    for bias in ([[first, False]], {str(first): -100}, [[llm.detokenize([first]), -100]]):
        r = post(server, "/completion", {"prompt": PROMPT, "n_predict": 1, "temperature": 0, "return_tokens": True,
                                         "logit_bias": bias})
        assert r["tokens"] and r["tokens"][0] != first, bias


def test_n_probs_and_n_predict_zero(server):
    want = openai_completion(server, max_tokens=4, logprobs=2)["logprobs"]
    r = post(server, "/completion", {"prompt": PROMPT, "n_predict": 4, "temperature": 0, "n_probs": 2})
    probs = r["completion_probabilities"]
    assert [p["token"] for p in probs] == want["tokens"]
    assert [round(p["logprob"], 5) for p in probs] == [round(x, 5) for x in want["token_logprobs"]]
    assert all(len(p["top_logprobs"]) == 2 and p["bytes"] for p in probs)
    evs = events(server, {"prompt": PROMPT, "n_predict": 4, "temperature": 0, "n_probs": 2})
    assert [p["token"] for e in evs[:-1] for p in e["completion_probabilities"]] == want["tokens"]
    # n_predict 0 evaluates the prompt into the cache and returns nothing.
    long = "A prompt long enough to fill whole blocks of the cache. " * 6
    r = post(server, "/completion", {"prompt": long, "n_predict": 0})
    assert r["content"] == "" and r["tokens_predicted"] == 0
    assert post(server, "/completion", {"prompt": long, "n_predict": 1})["tokens_cached"] >= 32


def test_llama_server_habits(server, llm):
    """What clients of llama-server count on: special tokens written in the prompt are read as
    such; `model` is ignored; n_predict past the context stops at its end (truncated); the
    samplers chain, today's and older, with a sampler left out turned off."""
    chatml = "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    r = post(server, "/completion", {"prompt": chatml, "n_predict": 2, "temperature": 0, "model": "any-name"})
    assert r["tokens_evaluated"] == len(llm.tokenize(chatml, special=True)) < len(llm.tokenize(chatml))
    ids = llm.tokenize("word " * 1500)[:1010]
    assert len(ids) == 1010
    r = post(server, "/completion", {"prompt": ids, "n_predict": 100, "temperature": 0, "ignore_eos": True})
    assert r["tokens_predicted"] == 1024 - 1010 and r["stop_type"] == "limit" and r["truncated"] is True
    assert post(server, "/completion", {"prompt": PROMPT, "n_predict": 3})["truncated"] is False
    today = ["penalties", "dry", "top_n_sigma", "top_k", "typ_p", "top_p", "min_p", "xtc", "temperature"]
    for samplers in (today, "edkypmxt"):
        r = post(server, "/completion", {"prompt": PROMPT, "n_predict": 8, "seed": 5, "samplers": samplers})
        assert r["content"] == post(server, "/completion", {"prompt": PROMPT, "n_predict": 8, "seed": 5})["content"]
    r = post(server, "/completion", {"prompt": PROMPT, "n_predict": 2, "samplers": ["top_p", "temperature"]})
    assert r["generation_settings"]["top_k"] == 0 and r["generation_settings"]["min_p"] == 0.0
    assert post(server, "/completion", {"prompt": PROMPT, "samplers": ["temperature", "top_k"]}, 400)["param"] == \
        "samplers"


def test_props_and_apply_template(server, llm):
    p = httpx.get(server.base + "/props", timeout=30).json()
    assert p["default_generation_settings"]["n_ctx"] == 1024 and p["total_slots"] >= 1
    assert p["chat_template"] == llm.chat_template and p["default_generation_settings"]["params"]["top_k"] == 40
    msgs = [{"role": "user", "content": "hi"}]
    text = post(server, "/apply-template", {"messages": msgs})["prompt"]
    assert text == llm.chat_prompt_text(msgs) and llm.tokenize(text, special=True) == llm.chat_prompt_ids(msgs)
    # The chat route's options: the generation prompt left out, the tools described (the generic
    # form puts them in the system message).
    text = post(server, "/apply-template", {"messages": msgs, "add_generation_prompt": False})["prompt"]
    assert text == llm.chat_prompt_text(msgs, add_generation_prompt=False)
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    text = post(server, "/apply-template", {"messages": msgs, "tools": tools})["prompt"]
    assert "get_weather" in text and text.endswith(llm.chat_prompt_text(msgs)[-40:])
    assert post(server, "/apply-template", {"messages": "hi"}, 400)["param"] == "messages"


@pytest.mark.parametrize("body,param", [
    ({}, "prompt"),
    ({"prompt": ""}, "prompt"),
    ({"prompt": []}, "prompt"),
    ({"prompt": [1, -5]}, "prompt"),
    ({"prompt": [1, 2.5]}, "prompt"),
    ({"prompt": "x", "n_predict": "8"}, "n_predict"),
    ({"prompt": "x", "n_predict": -2}, "n_predict"),
    ({"prompt": "x", "mirostat": 2}, "mirostat"),
    ({"prompt": "x", "samplers": ["temperature", "top_k"]}, "samplers"),
    ({"prompt": "x", "post_sampling_probs": True}, "post_sampling_probs"),
    ({"prompt": "x", "lora": [{"id": 0, "scale": 1.0}]}, "lora"),
    ({"prompt": "x", "n_probs": 99}, "n_probs"),
    ({"prompt": "x", "n_probs": "2"}, "n_probs"),
    ({"prompt": "x", "cache_prompt": "yes"}, "cache_prompt"),
    ({"prompt": "x", "samplers": ["top_k", "unknown"]}, "samplers"),
    ({"prompt": "x", "logit_bias": [[1]]}, "logit_bias"),
    ({"prompt": "x", "logit_bias": [[1, "a"]]}, "logit_bias"),
    ({"prompt": "x", "grammar": "root ::= foo"}, "grammar"),
    ({"prompt": "x " * 2000}, "prompt"),
])
def test_bad_requests_are_4xx(server, body, param):
    r = httpx.post(server.base + "/completion", json=body, timeout=30)
    assert 400 <= r.status_code < 500, r.text
    assert r.json()["error"]["param"] == param


def test_disconnect_mid_stream_frees_blocks(server):
    disconnect_mid_stream(server, "/completion", {"prompt": "Tell a long story:", "n_predict": 500})


def test_api_key_guards_the_routes(smollm2_gguf):
    s = RunningServer(smollm2_gguf, "--api-key", "sekret")
    try:
        for method, path in (("POST", "/completion"), ("GET", "/props"), ("POST", "/apply-template")):
            r = httpx.request(method, s.base + path, json={"prompt": "x", "messages": []}, timeout=30)
            assert r.status_code == 401, path
        for header in ({"Authorization": "Bearer sekret"}, {"X-Api-Key": "sekret"}):
            r = httpx.post(s.base + "/completion", json={"prompt": "x", "n_predict": 1}, headers=header, timeout=30)
            assert r.status_code == 200 and r.json()["tokens_predicted"] == 1
    finally:
        s.stop()


def test_vllm_and_llamacpp_flag_names(smollm2_gguf):
    """vLLM's --served-model-name / --max-model-len / --max-num-seqs and llama.cpp's --alias /
    --ctx-size are this server's own flags under their names."""
    for flags, name, n_ctx in ((["--served-model-name", "my-model", "--max-model-len", "512", "--max-num-seqs", "3",
                                 "--max-num-batched-tokens", "256"], "my-model", 512),
                               (["--alias", "other", "--ctx-size", "384"], "other", 384)):
        s = RunningServer(smollm2_gguf, *flags)  # (RunningServer's own --n-ctx comes first: the last wins)
        try:
            c = s.client()
            assert [m.id for m in c.models.list().data] == [name]
            assert c.completions.create(model=name, prompt="Hi", max_tokens=2).choices[0].text is not None
            p = httpx.get(s.base + "/props", timeout=30).json()
            assert p["default_generation_settings"]["n_ctx"] == n_ctx
            assert p["total_slots"] == (3 if name == "my-model" else 64)
        finally:
            s.stop()


def test_routes_without_v1(server):
    """llama-server also answers /chat/completions and /models: the openai client pointed at the
    server's root (no /v1) gets the /v1 routes' answers."""
    import openai
    root = openai.OpenAI(base_url=server.base, api_key="none", max_retries=0, timeout=120)
    ids = [m.id for m in root.models.list().data]
    assert ids == [m.id for m in server.client().models.list().data]
    body = {"model": ids[0], "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8, "temperature": 0}
    assert root.chat.completions.create(**body).choices[0].message.content == \
        server.client().chat.completions.create(**body).choices[0].message.content


def test_embedding_route(server, llm):
    """/embedding (and /embeddings), llama-server's own form: one {index, embedding: [[pooled]]}
    per prompt, in /completion's prompt shapes; embd_normalize 2 (the default) gives the vectors
    of /v1/embeddings and LLM.embed, the other values llama.cpp's scalings of the pooled vector;
    bad bodies are 400s naming the field."""
    import numpy as np
    texts = ["The cat sat on the mat.", "Stock prices fell sharply today."]
    want, raw = llm.embed(texts), llm.embed(texts, normalize=False)
    ids = llm.tokenize(texts[0])
    vec = lambda item: np.array(item["embedding"][0], np.float32)
    r = post(server, "/embedding", {"content": texts})
    assert [x["index"] for x in r] == [0, 1] and all(len(x["embedding"]) == 1 for x in r)
    assert np.stack([vec(x) for x in r]).tobytes() == want.tobytes()
    for body in ({"input": ids}, {"content": ids[:3] + [llm.detokenize(ids[3:])]}):
        one = post(server, "/embeddings", body)
        assert len(one) == 1 and vec(one[0]).tobytes() == want[0].tobytes(), body
    for p, norm in [(-1, 1.0), (0, np.abs(raw[0]).max() / 32760), (1, np.abs(raw[0]).sum()),
                    (3, np.sum(np.abs(raw[0].astype(np.float64)) ** 3) ** (1 / 3))]:
        got = vec(post(server, "/embedding", {"content": texts[0], "embd_normalize": p})[0])
        np.testing.assert_allclose(got, raw[0] / norm, rtol=1e-5, err_msg=str(p))
    for body, param in [({}, "content"), ({"content": ""}, "content"), ({"input": [10 ** 9]}, "input"),
                        ({"content": "x", "embd_normalize": "2"}, "embd_normalize"),
                        ({"content": "x", "embd_normalize": -2}, "embd_normalize")]:
        assert post(server, "/embedding", body, 400)["param"] == param, body


def test_infill(tmp_path, smollm2_gguf):
    """/infill (llama-server's, for editor plugins): the fill-in-the-middle prompt as llama-server
    builds it, the extra files (the repository form when the model has its tokens, else their
    text) then prefix + prompt, suffix, middle; a prefix, suffix and extra files past the context
    cut as llama-server cuts them (of B = min(2048, n_ctx / 2): the prefix's last 3B/4 tokens, the
    suffix's first B/4 less the prompt, the extra files' last n_ctx - B - 2 n_predict); a model
    without FIM tokens is a 400."""
    from gguf_factory import make_tiny_llama
    from test_server import N_CTX
    fim = ["<fim_prefix>", "<fim_suffix>", "<fim_middle>"]
    repo = str(make_tiny_llama(tmp_path / "repo.gguf", extra_tokens=fim + ["<repo_name>", "<file_sep>"]).path)
    plain = str(make_tiny_llama(tmp_path / "plain.gguf", extra_tokens=fim).path)
    small = {"input_prefix": "def f(x):\n", "input_suffix": "\n    return y\n", "prompt": "    ",
             "input_extra": [{"filename": "util.py", "text": "Y = 2\n"}], "n_predict": 6, "temperature": 0}
    big = {**small, "input_prefix": "".join(f"a{i} = {i}\n" for i in range(400)),
           "input_suffix": "".join(f"b{i} = {i}\n" for i in range(400)),
           "input_extra": [{"filename": "util.py", "text": "".join(f"c{i} = {i}\n" for i in range(400))}]}
    for path, repo_form in ((repo, True), (plain, False)):
        s = RunningServer(path)
        try:
            with LLM.from_pretrained(path, threads=1) as m:
                tok = lambda t: m.tokenize(t, add_bos=False)
                sp = {t: m.tokenize(t, add_bos=False, special=True)[0] for t in fim + ["<repo_name>", "<file_sep>"]}
                bos = [m._core().bos_id] if m._core().add_bos else []

                def want(body):
                    text = body["input_extra"][0]["text"]
                    extra = ([sp["<repo_name>"]] + tok("myproject\n") + [sp["<file_sep>"]] + tok("util.py\n") + tok(text)
                             + [sp["<file_sep>"]] + tok("filename\n")) if repo_form else tok(text)
                    b = min(2048, N_CTX // 2)
                    pre, suf, prompt = tok(body["input_prefix"]), tok(body["input_suffix"]), tok(body["prompt"])
                    pre = pre[len(pre) - min(len(pre), 3 * (b // 4)):]
                    suf = suf[:max(0, min(len(suf), b // 4 - (2 + len(prompt))))]
                    n_extra = min(max(0, N_CTX - b - 2 * body["n_predict"]), len(extra))
                    return bos + extra[len(extra) - n_extra:] + [sp["<fim_prefix>"]] + pre + prompt + \
                        [sp["<fim_suffix>"]] + suf + [sp["<fim_middle>"]]

                expected = [want(small), want(big)]
                layout = m.detokenize(expected[0], special=True)
            head = "<repo_name>myproject\n<file_sep>util.py\nY = 2\n<file_sep>filename\n" if repo_form else "Y = 2\n"
            assert layout.endswith(head + "<fim_prefix>def f(x):\n    <fim_suffix>\n    return y\n<fim_middle>")
            for body, ids in zip((small, big), expected):
                r = post(s, "/infill", body)
                assert r["tokens_evaluated"] == len(ids) <= N_CTX
                assert r["content"] == post(s, "/completion", {"prompt": ids, "n_predict": 6, "temperature": 0})["content"]
            assert post(s, "/infill", {**small, "input_extra": [{"text": 5}]}, 400)["param"] == "input_extra"
        finally:
            s.stop()
    s = RunningServer(smollm2_gguf)  # (SmolLM2's vocabulary has no fill-in-the-middle tokens)
    try:
        assert post(s, "/infill", small, 400)["param"] == "input_prefix"
    finally:
        s.stop()
