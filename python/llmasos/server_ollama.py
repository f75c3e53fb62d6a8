"""Ollama's API, for clients written against an Ollama server (the `ollama` Python and JS clients,
and the tools built on them): POST /api/chat and /api/generate (streamed as newline-delimited
JSON by default, one object with `"stream": false`), POST /api/embed and /api/embeddings, GET
/api/tags, /api/ps, /api/version and POST /api/show. A request is translated into the chat or
completion request it amounts to, with Ollama's option names and defaults (temperature 0.8,
top_k 40, top_p 0.9, repeat_penalty 1.1 over the last 64 tokens, num_predict -1: up to the
context's end), and runs on the same engine as the OpenAI routes; `format` ("json" or a JSON
schema) is structured output, `tools` and tool calls go through the chat route's tool forms, and
a thinking model's reasoning comes back as `thinking`; generate's `context` (the token ids a
reply returned) is continued by the next prompt, as Ollama's older clients chain turns. Load-time
options (num_ctx, num_gpu, ...)
and keep_alive change nothing here: the model is loaded once, with the server. Errors are
Ollama's {"error": message}."""
from __future__ import annotations

import asyncio
import datetime
import json
import logging
import time
import uuid
from typing import Any, Dict, List, Optional

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from . import __version__
from .server_chat import ChatCall, continuation
from .server_infill import infill_prompt, server_fim
from .server_requests import RequestError, sampling_params

logger = logging.getLogger("llmasos.server")

DEFAULTS = {"temperature": 0.8, "top_k": 40, "top_p": 0.9, "min_p": 0.0, "repeat_penalty": 1.1,
            "repeat_last_n": 64}
# Options that set up the model, the context or the hardware: Ollama reloads the model for them;
# this server loaded it once, so they change nothing.
LOAD_OPTIONS = {"num_ctx", "num_batch", "num_gpu", "main_gpu", "low_vram", "vocab_only", "use_mmap", "use_mlock",
                "num_thread", "numa", "num_keep", "f16_kv", "logits_all", "embedding_only", "use_numa"}
SAMPLING = {"temperature", "top_k", "top_p", "min_p", "repeat_penalty", "repeat_last_n", "presence_penalty",
            "frequency_penalty", "seed", "stop", "num_predict"}
# Sampling options Ollama had that do nothing here unless they ask for nothing.
INERT = {"typical_p": (1, 1.0), "tfs_z": (1, 1.0), "mirostat": (0,), "penalize_newline": (True,)}


def _error(server, route: str, e: RequestError) -> JSONResponse:
    server.metrics.request_done(route, e.status)
    return JSONResponse({"error": e.message}, status_code=e.status)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def _check_model(server, body: Dict[str, Any]) -> str:
    """The request's model name: this server's model id (":latest" after it as well)."""
    name = body.get("model")
    if not isinstance(name, str) or not name:
        raise RequestError("'model' is required")
    if name not in (server.model_id, server.model_id + ":latest"):
        raise RequestError(f"model '{name}' not found", status=404)
    return name


def _options(body: Dict[str, Any]) -> Dict[str, Any]:
    """Ollama's options (and its defaults) as the OpenAI body fields this server's parser reads."""
    opts = body.get("options") or {}
    if not isinstance(opts, dict):
        raise RequestError("'options' must be an object")
    for k, v in opts.items():
        if k in INERT and v not in INERT[k]:
            raise RequestError(f"option '{k}' {v!r} is not supported by this server")
        if k not in SAMPLING and k not in LOAD_OPTIONS and k not in INERT:
            raise RequestError(f"unknown option '{k}'")
    out = {**DEFAULTS, **{k: v for k, v in opts.items() if k in SAMPLING and k not in ("seed", "num_predict")}}
    seed = opts.get("seed")
    if seed is not None and seed != -1:
        out["seed"] = seed
    n = opts.get("num_predict")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < -2):
        raise RequestError("option 'num_predict' must be an integer: -1 or -2 for up to the context's end")
    if n is not None and n > 0:
        out["max_tokens"] = n
    fmt = body.get("format")
    if fmt == "json":
        out["response_format"] = {"type": "json_object"}
    elif isinstance(fmt, dict):
        out["response_format"] = {"type": "json_schema", "json_schema": {"name": "format", "schema": fmt}}
    elif fmt not in (None, ""):
        raise RequestError("'format' must be \"json\" or a JSON schema")
    return out


def _messages(msgs: Any) -> List[Dict[str, Any]]:
    """Ollama's chat messages as OpenAI's: tool calls with JSON-text arguments and ids, tool
    results tied to the latest call of their tool_name."""
    if not isinstance(msgs, list):
        raise RequestError("'messages' must be a list")
    out, last_id = [], {}
    for m in msgs:
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise RequestError("each message must be an object with a 'role'")
        if m.get("images"):
            raise RequestError("images are not supported by this model")
        msg: Dict[str, Any] = {"role": m["role"], "content": m.get("content") or ""}
        calls = m.get("tool_calls")
        if m["role"] == "assistant" and calls:
            if not isinstance(calls, list):
                raise RequestError("'tool_calls' must be a list")
            msg["tool_calls"] = []
            for c in calls:
                f = c.get("function") if isinstance(c, dict) else None
                if not isinstance(f, dict) or not isinstance(f.get("name"), str):
                    raise RequestError("a tool call must be {'function': {'name': ..., 'arguments': {...}}}")
                cid = c.get("id") or f"call_{uuid.uuid4().hex[:24]}"
                last_id[f["name"]] = cid
                args = f.get("arguments") or {}
                msg["tool_calls"].append({"id": cid, "type": "function", "function": {
                    "name": f["name"], "arguments": args if isinstance(args, str) else json.dumps(args)}})
        if m["role"] == "tool":
            name = m.get("tool_name") or m.get("name")
            msg["tool_call_id"] = m.get("tool_call_id") or last_id.get(name) or f"call_{uuid.uuid4().hex[:24]}"
        out.append(msg)
    return out


def _tool_calls(calls: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """OpenAI tool calls as Ollama writes them (arguments as an object)."""
    out = []
    for i, c in enumerate(calls):
        f = c["function"]
        try:
            args = json.loads(f["arguments"] or "{}")
        except ValueError:
            args = {}
        out.append({"id": c.get("id"), "function": {"index": c.get("index", i), "name": f["name"], "arguments": args}})
    return out


class Timer:
    """Ollama's counts and durations (nanoseconds) of one request."""

    def __init__(self, n_prompt: int):
        self.t0, self.first, self.n_prompt, self.n_out = time.perf_counter_ns(), None, n_prompt, 0

    def tokens(self, n: int) -> None:
        if n and self.first is None:
            self.first = time.perf_counter_ns()
        self.n_out += n

    def fields(self) -> Dict[str, Any]:
        end = time.perf_counter_ns()
        first = self.first or end
        return {"total_duration": end - self.t0, "load_duration": 0, "prompt_eval_count": self.n_prompt,
                "prompt_eval_duration": first - self.t0, "eval_count": self.n_out, "eval_duration": end - first}


async def _whole(server, request: Request, route: str, objects) -> Optional[List[Dict[str, Any]]]:
    """All of objects() for a non-streamed answer, or None when the client went away first (its
    sequences cancelled: Server._unless_gone)."""
    out: List[Dict[str, Any]] = []

    async def collect():
        async for o in objects:
            out.append(o)

    return out if await server._unless_gone(request, route, collect()) else None


def _ndjson(objs, route: str) -> StreamingResponse:
    async def lines():
        try:
            async for o in objs:
                yield json.dumps(o) + "\n"
        except Exception as e:  # the headers are sent: the error ends the stream, as Ollama's do
            logger.exception("stream of %s failed", route)
            yield json.dumps({"error": f"internal server error ({type(e).__name__})"}) + "\n"
    return StreamingResponse(lines(), media_type="application/x-ndjson")


async def chat(server, request: Request) -> Response:
    """POST /api/chat."""
    route = "/api/chat"
    try:
        server._check_key(request)
        body = await server._body(request, check_model=False)
        name = _check_model(server, body)
        oai = {"messages": _messages(body.get("messages", [])), **_options(body)}
        if body.get("tools"):
            oai["tools"] = body["tools"]
        think = body.get("think")
        if think is not None:
            if not isinstance(think, bool):
                raise RequestError("'think' levels are not supported: true or false")
            oai["chat_template_kwargs"] = {"enable_thinking": think}
        if not oai["messages"]:  # Ollama's way to load a model: nothing to say
            server.metrics.request_done(route, 200)
            return JSONResponse({"model": name, "created_at": _now(), "message": {"role": "assistant", "content": ""},
                                 "done_reason": "load", "done": True})
        call = ChatCall(server, oai)
    except RequestError as e:
        return _error(server, route, e)
    stream = body.get("stream", True)
    timer = Timer(len(call.ids))
    server.metrics.tokens(len(call.ids), 0)

    async def objects():
        reason = None
        async for index, d in server._run_choices(call.jobs):
            timer.tokens(len(d.token_ids))
            for chunk in call.chunk(index, d):
                ch = chunk["choices"][0]
                delta, reason = ch["delta"], ch["finish_reason"] or reason
                msg = {"role": "assistant", "content": delta.get("content") or ""}
                if delta.get("reasoning_content"):
                    msg["thinking"] = delta["reasoning_content"]
                if delta.get("tool_calls"):
                    msg["tool_calls"] = _tool_calls(delta["tool_calls"])
                if msg["content"] or len(msg) > 2:
                    yield {"model": name, "created_at": _now(), "message": msg, "done": False}
        yield {"model": name, "created_at": _now(), "message": {"role": "assistant", "content": ""}, "done": True,
               "done_reason": "length" if reason == "length" else "stop", **timer.fields()}

    if stream:
        server.metrics.request_done(route, 200)
        return _ndjson(objects(), route)
    objs = await _whole(server, request, route, objects())
    if objs is None:
        return Response(status_code=499)
    whole = {"role": "assistant", "content": ""}
    for o in objs:
        m = o["message"]
        whole["content"] += m["content"]
        for k in ("thinking", "tool_calls"):
            if k in m:
                whole[k] = whole.get(k, "" if k == "thinking" else []) + m[k]
    return JSONResponse({**objs[-1], "message": whole})


def _context(server, v) -> List[int]:
    """generate's `context`: the token ids an earlier reply returned, which the new prompt (after
    its template) continues, as in Ollama. [] or null: none."""
    if v is None:
        return []
    n = server.llm.n_vocab
    if not isinstance(v, list) or not all(isinstance(t, int) and not isinstance(t, bool) and 0 <= t < n for t in v):
        raise RequestError(f"'context' must be a list of token ids (integers in [0, {n}))")
    return v


async def generate(server, request: Request) -> Response:
    """POST /api/generate: the prompt in the model's chat template (after `system`), or as it is
    with raw, or around `suffix` in the model's fill-in-the-middle form."""
    route = "/api/generate"
    try:
        server._check_key(request)
        body = await server._body(request, check_model=False)
        name = _check_model(server, body)
        prompt, suffix, system = body.get("prompt", ""), body.get("suffix"), body.get("system")
        for field, v in (("prompt", prompt), ("suffix", suffix), ("system", system)):
            if v is not None and not isinstance(v, str):
                raise RequestError(f"'{field}' must be a string")
        for field in ("images", "template"):
            if body.get(field):
                raise RequestError(f"'{field}' is not supported by this server (use /api/chat for a conversation)")
        context = _context(server, body.get("context"))
        if context and suffix:
            raise RequestError("'context' cannot be combined with 'suffix'")
        opts = _options(body)
        if not prompt and not suffix:  # load the model: nothing to say
            server.metrics.request_done(route, 200)
            return JSONResponse({"model": name, "created_at": _now(), "response": "", "done": True, "done_reason": "load"})
        if not body.get("raw") and not suffix:
            messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
            think = body.get("think")
            extra = {"chat_template_kwargs": {"enable_thinking": think}} if isinstance(think, bool) else {}
            call = ChatCall(server, {"messages": messages, **opts, **extra}, prefix_ids=context)
            jobs, ids, chunks = call.jobs, call.ids, call.chunk
        else:
            if suffix:
                ids = infill_prompt(server.llm, {"input_prefix": prompt, "input_suffix": suffix}, server_fim(server))
            else:
                ids = server.llm.tokenize(prompt, special=True)
                if context:
                    ids = context + continuation(server.llm, ids)
            params, _, _, max_tokens = sampling_params(opts, max_tokens_default=None, n_ctx=server.llm.n_ctx,
                                                       max_n=1)
            server._fit(params, max_tokens, ids)
            jobs, chunks = [(0, ids, params)], None
    except RequestError as e:
        return _error(server, route, e)
    timer = Timer(len(ids))
    server.metrics.tokens(len(ids), 0)
    out_ids: List[int] = []

    async def objects():
        reason = None
        async for index, d in server._run_choices(jobs):
            timer.tokens(len(d.token_ids))
            out_ids.extend(d.token_ids)
            if chunks is None:
                reason = d.finish_reason or reason
                parts = [{"content": d.text}]
            else:
                parts = []
                for chunk in chunks(index, d):
                    ch = chunk["choices"][0]
                    parts.append(ch["delta"])
                    reason = ch["finish_reason"] or reason
            for p in parts:
                o = {"model": name, "created_at": _now(), "response": p.get("content") or "", "done": False}
                if p.get("reasoning_content"):
                    o["thinking"] = p["reasoning_content"]
                if o["response"] or "thinking" in o:
                    yield o
        yield {"model": name, "created_at": _now(), "response": "", "done": True,
               "done_reason": "length" if reason == "length" else "stop", "context": list(ids) + out_ids,
               **timer.fields()}

    if body.get("stream", True):
        server.metrics.request_done(route, 200)
        return _ndjson(objects(), route)
    objs = await _whole(server, request, route, objects())
    if objs is None:
        return Response(status_code=499)
    text = "".join(o["response"] for o in objs)
    thinking = "".join(o.get("thinking", "") for o in objs)
    return JSONResponse({**objs[-1], "response": text, **({"thinking": thinking} if thinking else {})})


async def embed(server, request: Request, legacy: bool = False) -> Response:
    """POST /api/embed ({"input": text or texts} -> {"embeddings": [...]}), and the older POST
    /api/embeddings ({"prompt": text} -> {"embedding": [...]}): L2-normalized pooled vectors,
    /v1/embeddings' bits."""
    route = "/api/embeddings" if legacy else "/api/embed"
    try:
        server._check_key(request)
        body = await server._body(request, check_model=False)
        name = _check_model(server, body)
        inp = body.get("prompt" if legacy else "input")
        texts = [inp] if isinstance(inp, str) else inp
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t for t in texts):
            raise RequestError(f"'{'prompt' if legacy else 'input'}' must be a non-empty string or list of them")
        dims = body.get("dimensions")
        if dims not in (None, server.llm.n_embd):
            raise RequestError(f"'dimensions' must be this model's {server.llm.n_embd}")
        ids_list = [server.llm.tokenize(t) for t in texts]
        truncate = body.get("truncate", True)
        for k, ids in enumerate(ids_list):
            if len(ids) > server.llm.n_ctx:
                if not truncate:
                    raise RequestError(f"an input has {len(ids)} tokens; this model's context is {server.llm.n_ctx}")
                ids_list[k] = ids[:server.llm.n_ctx]
    except RequestError as e:
        return _error(server, route, e)
    t0 = time.perf_counter_ns()
    vectors = await asyncio.to_thread(server.llm.embed, ids_list)
    n = sum(len(ids) for ids in ids_list)
    server.metrics.tokens(n, 0)
    server.metrics.request_done(route, 200)
    if legacy:
        return JSONResponse({"embedding": vectors[0].tolist()})
    return JSONResponse({"model": name, "embeddings": [v.tolist() for v in vectors],
                         "total_duration": time.perf_counter_ns() - t0, "load_duration": 0, "prompt_eval_count": n})


# GGUF general.file_type (llama.cpp's llama_ftype) as Ollama's quantization_level names it.
FILE_TYPES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K", 11: "Q3_K_S",
              12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K",
              32: "BF16"}


def _details(server) -> Dict[str, Any]:
    llm = server.llm
    arch = llm.metadata("general.architecture") or ""
    n = llm.metadata("general.size_label")
    return {"parent_model": "", "format": "gguf", "family": arch, "families": [arch] if arch else None,
            "parameter_size": n if isinstance(n, str) else "",
            "quantization_level": FILE_TYPES.get(llm.metadata("general.file_type"), "")}


def _card(server) -> Dict[str, Any]:
    """The served model as /api/tags lists it. Its digest is the SHA-256 of the file's path, size
    and modification time, an identity that is cheap to take, not of its bytes (Ollama's blob
    digest), which would take seconds to read for a large model."""
    import hashlib
    import os
    st = os.stat(server.llm.path)
    modified = datetime.datetime.fromtimestamp(st.st_mtime, datetime.timezone.utc).isoformat().replace("+00:00", "Z")
    digest = hashlib.sha256(f"{os.path.abspath(server.llm.path)}\0{st.st_size}\0{st.st_mtime_ns}".encode()).hexdigest()
    return {"name": server.model_id, "model": server.model_id, "modified_at": modified, "size": st.st_size,
            "digest": digest, "details": _details(server)}


async def tags(server, request: Request) -> Response:
    """GET /api/tags: the served model."""
    try:
        server._check_key(request)
    except RequestError as e:
        return _error(server, "/api/tags", e)
    server.metrics.request_done("/api/tags", 200)
    return JSONResponse({"models": [_card(server)]})


async def ps(server, request: Request) -> Response:
    """GET /api/ps: the served model, loaded for as long as the server runs."""
    try:
        server._check_key(request)
    except RequestError as e:
        return _error(server, "/api/ps", e)
    card = _card(server)
    server.metrics.request_done("/api/ps", 200)
    return JSONResponse({"models": [{**{k: card[k] for k in ("name", "model", "size", "digest", "details")},
                                     "expires_at": "2100-01-01T00:00:00Z", "size_vram": 0,
                                     "context_length": server.llm.n_ctx}]})


async def show(server, request: Request) -> Response:
    """POST /api/show: the served model's template, details, metadata and capabilities."""
    route = "/api/show"
    try:
        server._check_key(request)
        body = await server._body(request, check_model=False)
        _check_model(server, body)
    except RequestError as e:
        return _error(server, route, e)
    llm = server.llm
    arch = llm.metadata("general.architecture") or ""
    info = {k: v for k in ("general.architecture", "general.name", "general.size_label", "general.license",
                           f"{arch}.context_length", f"{arch}.embedding_length", f"{arch}.block_count",
                           f"{arch}.attention.head_count", f"{arch}.attention.head_count_kv")
            if (v := llm.metadata(k)) is not None}
    caps = ["completion"] + (["tools"] if "tools" in llm.chat_template else []) + ["embedding"]
    fim = server_fim(server)
    if None not in (fim["pre"], fim["suf"], fim["mid"]):
        caps.append("insert")
    server.metrics.request_done(route, 200)
    return JSONResponse({"modelfile": f"FROM {llm.path}\n", "parameters": "\n".join(
        f"{k:<16}{v}" for k, v in DEFAULTS.items()), "template": llm.chat_template, "details": _details(server),
        "model_info": info, "capabilities": caps, "modified_at": _card(server)["modified_at"]})


async def version(server, request: Request) -> Response:
    """GET /api/version."""
    server.metrics.request_done("/api/version", 200)
    return JSONResponse({"version": __version__})
