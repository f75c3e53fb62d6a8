"""OpenAI-compatible HTTP server: /v1/models, /v1/completions, /v1/chat/completions (with SSE
streaming), /v1/responses (server_responses.py), /v1/embeddings, /health and /metrics, over the
AsyncEngine's continuous batching; /tokenize and /detokenize as vLLM and llama.cpp answer them
(server_tokens.py); llama.cpp server's /completion, /props and /apply-template (server_llamacpp.py)
and /infill (server_infill.py)."""
from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
import uuid
from typing import Any, AsyncIterator, Dict, List, Optional

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from . import (reasoning, server_embeddings, server_infill, server_llamacpp, server_ollama, server_responses,
               server_tokens)
from .engine import AsyncEngine
from .llm import LLM
from .logprobs import TokenPieces
from .server_chat import ChatCall, ChoiceResult
from .server_logprobs import completion_logprobs, completion_logprobs_echo, prompt_logprobs, vllm_prompt_logprobs
from .server_metrics import Metrics
from .server_requests import RequestError, include_usage, params_for_choice, parse_json, sampling_params

MAX_BODY_BYTES = 1 << 20
logger = logging.getLogger("llmasos.server")


class Server:
    def __init__(self, llm: LLM, model_id: str, *, api_key: Optional[str] = None, max_n: int = 8,
                 max_batch_tokens: int = 512, max_seqs: int = 64, kv_cache_bytes: int = 0,
                 reasoning_format: str = "auto", prompt_lookup: int = 0):
        self.llm, self.model_id, self.api_key, self.max_n, self.max_seqs = llm, model_id, api_key, max_n, max_seqs
        if reasoning_format not in ("auto", "none"):
            raise ValueError(f"reasoning_format must be 'auto' or 'none', got {reasoning_format!r}")
        # A thinking model's chat replies split into reasoning_content and content (reasoning.py).
        self.reasoning = reasoning_format == "auto" and reasoning.thinks(llm._is_token, llm.chat_template)
        self.engine = AsyncEngine(llm, max_batch_tokens=max_batch_tokens, max_seqs=max_seqs,
                                  kv_cache_bytes=kv_cache_bytes, lookup_tokens=prompt_lookup)
        self.block_tokens = int(self.engine.stats()["block_tokens"])  # the prefix cache's unit
        self.metrics = Metrics()
        self.scoring = asyncio.Semaphore(1)  # the LLM's one session scores one prompt at a time: wait here, not in a worker thread
        self.pieces = TokenPieces(llm._core())  # token texts for logprobs
        self.created = int(time.time())
        routes = [
            Route("/health", self.health, methods=["GET"]),
            Route("/version", self.version, methods=["GET"]),
            Route("/metrics", self.prometheus, methods=["GET"]),
            Route("/v1/models", self.models, methods=["GET"]),
            Route("/models", self.models, methods=["GET"]),  # llama-server's aliases without /v1
            Route("/v1/models/{model:path}", self.model_info, methods=["GET"]),
            Route("/v1/completions", self.completions, methods=["POST"]),
            Route("/v1/chat/completions", self.chat_completions, methods=["POST"]),
            Route("/chat/completions", self.chat_completions, methods=["POST"]),
            Route("/v1/embeddings", self.embeddings, methods=["POST"]),
            Route("/embedding", functools.partial(server_embeddings.llamacpp, self), methods=["POST"]),
            Route("/embeddings", functools.partial(server_embeddings.llamacpp, self, route="/embeddings"),
                  methods=["POST"]),
            Route("/tokenize", self.tokenize, methods=["POST"]),
            Route("/detokenize", self.detokenize, methods=["POST"]),
            Route("/tokenizer_info", self.tokenizer_info, methods=["GET"]),
            Route("/completion", functools.partial(server_llamacpp.completion, self), methods=["POST"]),
            Route("/completions", functools.partial(server_llamacpp.completion, self), methods=["POST"]),
            Route("/props", functools.partial(server_llamacpp.props, self), methods=["GET"]),
            Route("/infill", functools.partial(server_infill.infill, self), methods=["POST"]),
            Route("/apply-template", functools.partial(server_llamacpp.apply_template, self), methods=["POST"]),
            Route("/v1/responses", functools.partial(server_responses.create, self), methods=["POST"]),
            Route("/v1/responses/{rid}", functools.partial(server_responses.retrieve, self), methods=["GET"]),
            Route("/v1/responses/{rid}", functools.partial(server_responses.delete, self), methods=["DELETE"]),
            Route("/v1/responses/{rid}/input_items", functools.partial(server_responses.list_inputs, self),
                  methods=["GET"]),
            Route("/v1/responses/{rid}/cancel", functools.partial(server_responses.cancel, self), methods=["POST"]),
            Route("/api/chat", functools.partial(server_ollama.chat, self), methods=["POST"]),
            Route("/api/generate", functools.partial(server_ollama.generate, self), methods=["POST"]),
            Route("/api/embed", functools.partial(server_ollama.embed, self), methods=["POST"]),
            Route("/api/embeddings", functools.partial(server_ollama.embed, self, legacy=True), methods=["POST"]),
            Route("/api/tags", functools.partial(server_ollama.tags, self), methods=["GET"]),
            Route("/api/ps", functools.partial(server_ollama.ps, self), methods=["GET"]),
            Route("/api/show", functools.partial(server_ollama.show, self), methods=["POST"]),
            Route("/api/version", functools.partial(server_ollama.version, self), methods=["GET"]),
        ]
        self.responses = server_responses.ResponseStore()
        self.background: Dict[str, asyncio.Task] = {}  # running background responses, by id
        self.fim: Optional[Dict[str, Optional[int]]] = None  # the model's infill tokens, found once
        self.routes = {r.path for r in routes}
        self.app = Starlette(routes=routes, lifespan=self._lifespan, exception_handlers={
            HTTPException: self._http_error, Exception: self._internal_error})

    @contextlib.asynccontextmanager
    async def _lifespan(self, app):
        yield
        for task in list(self.background.values()):
            task.cancel()
        await asyncio.gather(*self.background.values(), return_exceptions=True)
        self.engine.close()

    # -- helpers ------------------------------------------------------------------------------
    def _check_key(self, request: Request) -> None:
        """'Authorization: Bearer KEY' (OpenAI's clients), or 'X-Api-Key: KEY' (llama-server's too)."""
        if self.api_key is None:
            return
        if request.headers.get("authorization", "") != f"Bearer {self.api_key}" and \
                request.headers.get("x-api-key") != self.api_key:
            raise RequestError("invalid or missing API key", status=401, type_="authentication_error",
                               code="invalid_api_key")

    async def _body(self, request: Request, check_model: bool = True) -> Dict[str, Any]:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            raise RequestError(f"request body larger than {MAX_BODY_BYTES} bytes", status=413)
        raw = b""
        try:
            async for chunk in request.stream():
                raw += chunk
                if len(raw) > MAX_BODY_BYTES:
                    raise RequestError(f"request body larger than {MAX_BODY_BYTES} bytes", status=413)
        except ClientDisconnect:  # gone before its body arrived: nobody to answer (counted as 499)
            raise RequestError("the client closed the connection", status=499) from None
        try:
            body = parse_json(raw)
        except (ValueError, UnicodeDecodeError) as e:
            raise RequestError(f"malformed JSON body: {e}") from None
        if not isinstance(body, dict):
            raise RequestError("the JSON body must be an object")
        bad = _lone_surrogate(body)
        if bad is not None:
            raise RequestError(f"the JSON body holds a string with a lone UTF-16 surrogate ({bad!r}), "
                               "which is not Unicode text")
        if check_model:  # (llama-server's own routes ignore the field)
            self._check_model(body.get("model"))
        return body

    def _check_model(self, model: Any) -> None:
        if model is not None and model != self.model_id:
            raise RequestError(f"the model '{model}' does not exist; this server serves '{self.model_id}'",
                               "model", status=404, code="model_not_found")

    async def _http_error(self, request: Request, exc: HTTPException) -> Response:
        """Starlette's own errors (unknown route 404, wrong method 405) in OpenAI's JSON shape,
        which client libraries parse, instead of plain text."""
        what = {404: f"no route {request.method} {request.url.path}",
                405: f"{request.url.path} does not take {request.method}"}.get(exc.status_code, exc.detail)
        body = RequestError(what, status=exc.status_code).body()
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    async def _internal_error(self, request: Request, exc: Exception) -> Response:
        """A bug, not a bad request: a JSON 500 (counted in /metrics) instead of plain text; the
        traceback still goes to the log."""
        route = request.url.path if request.url.path in self.routes else "other"
        self.metrics.request_done(route, 500)
        return JSONResponse(_internal_error_body(exc), status_code=500)

    def _error(self, route: str, e: RequestError) -> JSONResponse:
        self.metrics.request_done(route, e.status)
        return JSONResponse(e.body(), status_code=e.status)

    def _prompt_ids(self, prompt: Any) -> List[List[int]]:
        """A completions 'prompt': a string, a list of strings, token ids, or lists of them."""
        if isinstance(prompt, str):
            prompts = [prompt]
        elif isinstance(prompt, list) and prompt and all(isinstance(t, int) and not isinstance(t, bool) for t in prompt):
            prompts = [prompt]
        elif isinstance(prompt, list) and prompt and all(isinstance(p, (str, list)) for p in prompt):
            prompts = prompt
        else:
            raise RequestError("'prompt' must be a non-empty string, list of strings or token ids", "prompt")
        out = []
        for p in prompts:
            if isinstance(p, str):
                ids = self.llm.tokenize(p)
            elif all(isinstance(t, int) and not isinstance(t, bool) and 0 <= t < self.llm.n_vocab for t in p):
                ids = list(p)
            else:
                raise RequestError(f"token ids must be integers in [0, {self.llm.n_vocab})", "prompt")
            if not ids:
                raise RequestError("the prompt is empty", "prompt")
            out.append(ids)
        return out

    def _fit(self, params, max_tokens, ids: List[int]) -> None:
        for name in ("logit_bias", "allowed_token_ids"):
            bad = [t for t in (getattr(params, name) or ()) if t >= self.llm.n_vocab]
            if bad:
                raise RequestError(f"'{name}' token id {bad[0]} is out of range [0, {self.llm.n_vocab})", name)
        room = self.llm.n_ctx - len(ids)
        if room < 1:
            raise RequestError(f"the prompt has {len(ids)} tokens; this model's context is {self.llm.n_ctx}",
                               "prompt", code="context_length_exceeded")
        if max_tokens is not None and max_tokens > room:
            raise RequestError(f"max_tokens={max_tokens} plus the prompt's {len(ids)} tokens exceeds the "
                               f"context of {self.llm.n_ctx} tokens", "max_tokens",
                               code="context_length_exceeded")
        params.max_tokens = max_tokens if max_tokens is not None else room
        if params.min_tokens > params.max_tokens:
            raise RequestError(f"min_tokens={params.min_tokens} exceeds the {params.max_tokens} tokens the "
                               f"context leaves after the prompt's {len(ids)}", "min_tokens")

    async def _run_choices(self, jobs) -> AsyncIterator[tuple]:
        """Runs (choice index, prompt ids, params) jobs concurrently; yields (index, delta)."""
        queue: asyncio.Queue = asyncio.Queue()
        t0 = time.perf_counter()

        async def one(index, ids, params):
            try:
                first, last = True, None
                async for d in self.engine.generate(ids, params):
                    now = time.perf_counter()
                    if d.token_ids:
                        if first:
                            self.metrics.observe_ttft(now - t0)
                            first = False
                        elif last is not None:
                            self.metrics.observe_token((now - last) / len(d.token_ids))
                        last = now
                    self.metrics.tokens(0, len(d.token_ids))
                    await queue.put((index, d))
            except Exception as e:  # handed to the consumer
                await queue.put((index, e))

        tasks = [asyncio.create_task(one(*j)) for j in jobs]
        remaining = len(tasks)
        try:
            while remaining:
                index, d = await queue.get()
                if isinstance(d, Exception):
                    raise d
                if d.finished:
                    remaining -= 1
                yield index, d
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _unless_gone(self, request, route: str, work) -> bool:
        """Awaits `work` (a coroutine gathering a non-streamed answer) unless the client goes away
        first: then it is cancelled (closing _run_choices cancels the sequences in the engine and
        frees their KV blocks, as vLLM does) and the request counts as 499, nginx's "client closed
        request". True when the work finished (its error, if any, propagates), counted as 200."""
        work, gone = asyncio.ensure_future(work), asyncio.ensure_future(_disconnected(request))
        try:
            await asyncio.wait({work, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (work, gone):
                if not t.done():
                    t.cancel()
            await asyncio.gather(work, gone, return_exceptions=True)
        if not work.done() or work.cancelled():
            self.metrics.request_done(route, 499)
            return False
        work.result()
        self.metrics.request_done(route, 200)
        return True

    async def _respond(self, request, route, jobs, n_prompt_tokens, make_chunk, make_final, stream,
                       usage_base=None, logprobs_of=lambda d: d.logprobs or [], on_delta=None):
        """Runs the jobs; streamed, each delta becomes make_chunk's chunks, then (when usage_base is
        given: stream_options.include_usage) a usage chunk with no choices, then [DONE]. Not
        streamed, make_final gets a ChoiceResult per job (index order; its logprobs gathered from
        each delta by logprobs_of) and the usage. on_delta(index, delta) sees each delta first."""
        self.metrics.tokens(n_prompt_tokens, 0)
        cached: Dict[int, int] = {}  # per choice: the prompt tokens the prefix cache held

        def usage(generated):
            # Each prompt counts once, as in prompt_tokens: its first choice's cached tokens.
            seen, hit = set(), 0
            for index, ids, _ in jobs:
                if id(ids) not in seen:
                    seen.add(id(ids))
                    hit += cached.get(index, 0)
            return {"prompt_tokens": n_prompt_tokens, "completion_tokens": generated,
                    "total_tokens": n_prompt_tokens + generated, "prompt_tokens_details": {"cached_tokens": hit}}

        if stream:
            async def sse():
                generated = 0
                try:
                    async for index, d in self._run_choices(jobs):
                        if on_delta:
                            on_delta(index, d)
                        generated += len(d.token_ids)
                        cached.setdefault(index, d.cached_tokens)
                        for chunk in make_chunk(index, d):
                            yield f"data: {json.dumps(chunk)}\n\n"
                    if usage_base is not None:
                        yield f"data: {json.dumps({**usage_base, 'choices': [], 'usage': usage(generated)})}\n\n"
                except Exception as e:  # headers are sent: report it in the stream, as vLLM does
                    logger.exception("stream of %s failed", route)
                    yield f"data: {json.dumps(_internal_error_body(e))}\n\n"
                yield "data: [DONE]\n\n"
            self.metrics.request_done(route, 200)
            return StreamingResponse(sse(), media_type="text/event-stream")
        results = [ChoiceResult() for _ in jobs]

        async def collect():
            async for index, d in self._run_choices(jobs):
                if on_delta:
                    on_delta(index, d)
                results[index].add(d, logprobs_of(d))
                cached.setdefault(index, d.cached_tokens)

        if not await self._unless_gone(request, route, collect()):
            return Response(status_code=499)
        return JSONResponse(make_final(results, usage(sum(len(r.token_ids) for r in results))))

    # -- routes -------------------------------------------------------------------------------
    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def version(self, request: Request) -> Response:
        """GET /version, as vLLM answers it (unguarded, as /health)."""
        from . import __version__
        return JSONResponse({"version": __version__})

    async def prometheus(self, request: Request) -> Response:
        return PlainTextResponse(self.metrics.render(self.engine.stats()),
                                 media_type="text/plain; version=0.0.4")

    async def models(self, request: Request) -> Response:
        try:
            self._check_key(request)
        except RequestError as e:
            return self._error("/v1/models", e)
        return JSONResponse({"object": "list", "data": [self._model_card()]})

    async def model_info(self, request: Request) -> Response:
        """GET /v1/models/{id}: the served model, or a 404 in OpenAI's shape."""
        try:
            self._check_key(request)
            self._check_model(request.path_params["model"])
        except RequestError as e:
            return self._error("/v1/models/{model}", e)
        return JSONResponse(self._model_card())

    async def embeddings(self, request: Request) -> Response:
        route = "/v1/embeddings"
        try:
            self._check_key(request)
            ids_list, fmt = server_embeddings.parse(self.llm, await self._body(request))
        except RequestError as e:
            return self._error(route, e)
        # One whole pass per input on the LLM's own session, off the event loop; the model's
        # forward passes are serialized with the engine's steps.
        vectors = await asyncio.to_thread(self.llm.embed, ids_list)
        self.metrics.tokens(sum(len(ids) for ids in ids_list), 0)
        self.metrics.request_done(route, 200)
        return JSONResponse(server_embeddings.response(vectors, ids_list, fmt, self.model_id))

    async def tokenize(self, request: Request) -> Response:
        try:
            self._check_key(request)
            out = server_tokens.tokenize(self.llm, self.pieces, await self._body(request))
        except RequestError as e:
            return self._error("/tokenize", e)
        self.metrics.request_done("/tokenize", 200)
        return JSONResponse(out)

    async def detokenize(self, request: Request) -> Response:
        try:
            self._check_key(request)
            out = server_tokens.detokenize(self.llm, await self._body(request))
        except RequestError as e:
            return self._error("/detokenize", e)
        self.metrics.request_done("/detokenize", 200)
        return JSONResponse(out)

    async def tokenizer_info(self, request: Request) -> Response:
        try:
            self._check_key(request)
        except RequestError as e:
            return self._error("/tokenizer_info", e)
        self.metrics.request_done("/tokenizer_info", 200)
        return JSONResponse(server_tokens.tokenizer_info(self.llm))

    def _model_card(self) -> Dict[str, Any]:
        return {"id": self.model_id, "object": "model", "created": self.created, "owned_by": "llmasos"}

    async def completions(self, request: Request) -> Response:
        route = "/v1/completions"
        try:
            self._check_key(request)
            body = await self._body(request)
            if "prompt" not in body:
                raise RequestError("'prompt' is required", "prompt")
            echo = body.get("echo", False)
            if not isinstance(echo, bool):
                raise RequestError("'echo' must be a boolean", "echo")
            # max_tokens 0 with echo scores the prompt alone (the legacy API's way, which
            # lm-evaluation-harness uses); without echo it asks for nothing and stays a 400.
            score_only = echo and body.get("max_tokens") == 0 and body.get("max_tokens") is not False
            params, n, stream, max_tokens = sampling_params(
                {k: v for k, v in body.items() if k != "max_tokens"} if score_only else body,
                max_tokens_default=16, n_ctx=self.llm.n_ctx, max_n=self.max_n)
            if score_only and stream:
                raise RequestError("max_tokens 0 (scoring the prompt) is answered whole: set stream "
                                   "false", "stream")
            usage = include_usage(body, stream)
            prompts = self._prompt_ids(body["prompt"])
            jobs = []
            for p_i, ids in enumerate(prompts):
                for c in range(n):
                    p = params_for_choice(params, c)
                    if score_only:
                        if len(ids) > self.llm.n_ctx:
                            raise RequestError(f"the prompt has {len(ids)} tokens; this model's context is "
                                               f"{self.llm.n_ctx}", "prompt", code="context_length_exceeded")
                    else:
                        self._fit(p, max_tokens, ids)
                    jobs.append((p_i * n + c, ids, p))
        except RequestError as e:
            return self._error(route, e)
        rid, created = f"cmpl-{uuid.uuid4().hex}", int(time.time())
        prefix = {j[0]: (self.llm.detokenize(j[1]) if echo else "") for j in jobs}
        n_prompt = sum(len(ids) for ids in prompts)
        # echo with logprobs: the prompt's own tokens first (one pass each, off the event loop);
        # vLLM's prompt_logprobs: the same scoring in its own shape.
        scored = {}
        if echo and params.logprobs is not None:
            scored = await self._score_prompts(prompts, params.logprobs)
        p_scored = {}
        if params.prompt_logprobs is not None:
            p_scored = (scored if params.prompt_logprobs == params.logprobs and scored
                        else await self._score_prompts(prompts, params.prompt_logprobs))
            p_scored = {p_i: vllm_prompt_logprobs(e, self.pieces) for p_i, e in p_scored.items()}

        def logprobs(index, entries, first):
            if params.logprobs is None:
                return None
            if not echo:
                return completion_logprobs(entries, self.pieces)
            p_i = index // n  # with echo, generated offsets count the echoed prompt text too
            return completion_logprobs_echo(scored[p_i] if first else None, prompts[p_i], entries,
                                            len(prefix[index]), self.pieces)

        sent = set()  # choices whose first chunk (with the echoed prompt) went out

        def with_end(d):
            # A choice that ended at an end-of-generation (or stop_token_ids) token reports that
            # token last, as OpenAI's and vLLM's completions do, its text not in `text`: scoring
            # a continuation that ends the text (echo, max_tokens 1) reads every logprob but it.
            return (d.logprobs or []) + ([d.end_logprobs] if d.end_logprobs is not None else [])

        def chunk(index, d):
            first = index not in sent
            sent.add(index)
            text = (prefix[index] if first else "") + d.text
            return [{"id": rid, "object": "text_completion", "created": created, "model": self.model_id,
                     "choices": [{"index": index, "text": text,
                                  "logprobs": logprobs(index, with_end(d), first),
                                  "finish_reason": d.finish_reason, "stop_reason": d.stop_reason}]}]

        def final(choices, usage):
            return {"id": rid, "object": "text_completion", "created": created, "model": self.model_id,
                    "choices": [{"index": i, "text": prefix.get(i, "") + c.text, "logprobs": logprobs(i, c.logprobs, True),
                                 "finish_reason": c.finish_reason, "stop_reason": c.stop_reason,
                                 **({"prompt_logprobs": p_scored[i // n]} if p_scored else {})}
                                for i, c in enumerate(choices)],
                    "usage": usage}

        if score_only:
            self.metrics.tokens(n_prompt, 0)
            self.metrics.request_done(route, 200)
            return JSONResponse(final([ChoiceResult(finish_reason="length") for _ in jobs],
                                      {"prompt_tokens": n_prompt, "completion_tokens": 0, "total_tokens": n_prompt,
                                       "prompt_tokens_details": {"cached_tokens": 0}}))  # (one whole pass)

        base = {"id": rid, "object": "text_completion", "created": created, "model": self.model_id}
        return await self._respond(request, route, jobs, n_prompt, chunk, final, stream,
                                   base if usage else None, logprobs_of=with_end)

    async def _score_prompts(self, prompts, k: int) -> Dict[int, list]:
        """Each prompt's own tokens scored (server_logprobs.prompt_logprobs), off the event loop."""
        out = {}
        async with self.scoring:
            for p_i, ids in enumerate(prompts):
                out[p_i] = await asyncio.to_thread(prompt_logprobs, self.llm, ids, k)
        return out

    async def chat_completions(self, request: Request) -> Response:
        route = "/v1/chat/completions"
        try:
            self._check_key(request)
            chat = ChatCall(self, await self._body(request))
        except RequestError as e:
            return self._error(route, e)
        if chat.params.prompt_logprobs is not None:
            chat.p_scored = vllm_prompt_logprobs(
                (await self._score_prompts([chat.ids], chat.params.prompt_logprobs))[0], self.pieces)
        return await self._respond(request, route, chat.jobs, len(chat.ids), chat.chunk, chat.final, chat.stream,
                                   chat.base() if chat.usage else None)


def _internal_error_body(exc: BaseException) -> Dict[str, Any]:
    return RequestError(f"internal server error ({type(exc).__name__})", status=500,
                        type_="internal_error").body()


async def _disconnected(request: Request) -> None:
    """Returns once the client has closed the connection (the body is already read, so the next
    ASGI message is the disconnect)."""
    while True:
        if (await request.receive())["type"] == "http.disconnect":
            return


def _lone_surrogate(value: Any) -> Optional[str]:
    """The first string in a parsed JSON value (keys included) that UTF-8 cannot encode: JSON lets
    "\\ud800" through, and the tokenizer, the template and the response encoder would each fail."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:
                return v[:40]
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return None


def serve(model: str, *, host: str = "127.0.0.1", port: int = 8000, api_key: Optional[str] = None,
          n_ctx: Optional[int] = None, threads: Optional[int] = None, max_n: int = 8,
          max_batch_tokens: int = 512, max_seqs: int = 64, kv_cache_bytes: int = 0,
          kv_cache_type: str = "f16", chat_template: Optional[str] = None,
          reasoning_format: str = "auto", prompt_lookup: int = 0, log_level: str = "warning",
          served_model_name: Optional[str] = None) -> None:
    import uvicorn
    llm = LLM.from_pretrained(model, n_ctx=n_ctx, threads=threads, kv_cache_type=kv_cache_type,
                              chat_template=chat_template)
    model_id = served_model_name or (model if "/" not in model and not model.endswith(".gguf")
                                     else llm.path.rsplit("/", 1)[-1])
    server = Server(llm, model_id, api_key=api_key, max_n=max_n, max_batch_tokens=max_batch_tokens,
                    reasoning_format=reasoning_format, prompt_lookup=prompt_lookup,
                    max_seqs=max_seqs, kv_cache_bytes=kv_cache_bytes)
    uvicorn.run(server.app, host=host, port=port, log_level=log_level)
