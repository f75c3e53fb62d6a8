"""llama.cpp server's own routes, for clients written against llama-server: POST /completion (and
/completions), GET /props and POST /apply-template (POST /infill: server_infill.py). /completion takes llama.cpp's prompt shapes
and field names with its defaults (temperature 0.8, top_k 40, top_p 0.95, min_p 0.05, n_predict
-1: up to the context's end, seed -1: random) and answers in its shape: content, stop_type
(eos / limit / word), stopping_word, tokens_predicted / evaluated / cached, timings and, with
n_probs, completion_probabilities; streamed as one event per piece and a last one with stop true
(no [DONE]). The requests run on the same engine as the OpenAI routes."""
from __future__ import annotations

import json
import logging
import time
from typing import Any, Dict, List, Optional

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from . import __version__, chat_template
from .server_chat import ChoiceResult, chat_prompt
from .server_logprobs import token_logprobs
from .server_requests import RequestError, chat_template_error, params_for_choice, sampling_params

logger = logging.getLogger("llmasos.server")

DEFAULTS = {"temperature": 0.8, "top_k": 40, "top_p": 0.95, "min_p": 0.05}
RANDOM_SEEDS = (-1, 0xFFFFFFFF)  # llama.cpp's "no seed" values
SAMPLERS = ["top_k", "top_p", "min_p", "temperature"]  # what runs, in llama.cpp's names
# llama.cpp fields this server takes as given: they change nothing here (prompt caching is always
# on; there are no slots; n_keep only matters past the context, which is refused).
PASSIVE = ("cache_prompt", "id_slot", "n_keep", "n_discard", "return_progress", "model")
# Fields refused unless they ask for nothing: field -> the values that change nothing.
INERT = {"post_sampling_probs": (False,), "timings_per_token": (False,), "t_max_predict_ms": (0,),
         "n_indent": (0,), "response_fields": ([],), "lora": ([],), "image_data": ([],),
         "multimodal_data": ([],)}


def prompt_ids(llm, prompt: Any) -> List[List[int]]:
    """llama.cpp's prompt shapes: "text", token ids, ids and texts mixed ([12, "text", 34]: BOS
    first when the first piece is text and the model adds one), or a list of such prompts (a list
    of strings, or of lists)."""
    def one(p) -> List[int]:
        if isinstance(p, str):  # special tokens written out are read as such, as llama-server reads them
            return llm.tokenize(p, special=True)
        if not isinstance(p, list) or not p:
            raise RequestError("each prompt must be a string, or a non-empty list of token ids and strings", "prompt")
        ids: List[int] = []
        for k, x in enumerate(p):
            if isinstance(x, str):
                ids += llm.tokenize(x, add_bos=None if k == 0 else False, special=True)
            elif isinstance(x, int) and not isinstance(x, bool) and 0 <= x < llm.n_vocab:
                ids.append(x)
            else:
                raise RequestError(f"prompt pieces must be strings or token ids in [0, {llm.n_vocab}), got {x!r}",
                                   "prompt")
        return ids

    # A list without token ids is several prompts (llama.cpp: an array that is not ids and texts mixed).
    several = isinstance(prompt, list) and bool(prompt) and not any(
        isinstance(x, int) and not isinstance(x, bool) for x in prompt)
    out = [one(p) for p in prompt] if several else [one(prompt)]
    if any(not ids for ids in out):
        raise RequestError("the prompt is empty", "prompt")
    return out


def _logit_bias(llm, v) -> Optional[Dict[str, float]]:
    """llama.cpp's logit_bias ([[token id or text, bias or false], ...], or {id: bias}) as
    OpenAI's {"id": bias}: false bans the token (-100); a text biases each of its tokens."""
    if v is None or v == []:
        return None
    if isinstance(v, dict):
        pairs = list(v.items())
    elif isinstance(v, list) and all(isinstance(p, list) and len(p) == 2 for p in v):
        pairs = [tuple(p) for p in v]
    else:
        raise RequestError("'logit_bias' must be a list of [token, bias] pairs or an object", "logit_bias")
    out: Dict[str, float] = {}
    for tok, bias in pairs:
        if bias is False:
            bias = -100.0  # (llama.cpp: -inf; -100 leaves the token out as surely)
        if isinstance(bias, bool) or not isinstance(bias, (int, float)) or bias != bias:
            raise RequestError(f"'logit_bias' biases must be numbers or false, got {bias!r}", "logit_bias")
        if isinstance(tok, str) and isinstance(v, dict):  # an object's keys: token ids, else text
            try:
                tok = int(tok)
            except ValueError:
                pass
        if isinstance(tok, int) and not isinstance(tok, bool):
            ids = [tok] if 0 <= tok < llm.n_vocab else []  # llama.cpp skips ids outside the vocabulary
        elif isinstance(tok, str):
            ids = llm.tokenize(tok, add_bos=False)
        else:
            raise RequestError(f"'logit_bias' tokens must be token ids or text, got {tok!r}", "logit_bias")
        for t in ids:
            out[str(t)] = max(-100.0, min(100.0, float(bias)))  # this sampler's range
    return out or None


def completion_body(llm, body: Dict[str, Any]) -> Dict[str, Any]:
    """A /completion body in the OpenAI completions' words, for sampling_params (which checks
    every value): llama.cpp's defaults where a field is absent."""
    for name, neutral in INERT.items():
        if body.get(name) is not None and body[name] not in neutral:
            raise RequestError(f"'{name}' {body[name]!r} is not supported by this server", name)
    for name, kind in (("id_slot", int), ("cache_prompt", bool), ("n_probs", int), ("return_tokens", bool)):
        value = body.get(name)
        if value is not None and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
            raise RequestError(f"'{name}' must be {'an integer' if kind is int else 'a boolean'}", name)
    out = {k: v for k, v in body.items() if k not in INERT and k not in PASSIVE and k not in (
        "samplers", "n_predict", "n_probs", "seed", "logit_bias", "prompt", "return_tokens", "max_tokens")}
    for k, v in DEFAULTS.items():
        out.setdefault(k, v)
    out.update(_samplers(body.get("samplers")))
    n_predict = body.get("n_predict", body.get("max_tokens", -1))
    if n_predict is None:
        n_predict = -1
    if isinstance(n_predict, bool) or not isinstance(n_predict, int) or n_predict < -1:
        raise RequestError(f"'n_predict' must be an integer, -1 for no limit, got {n_predict!r}", "n_predict")
    if n_predict != -1:  # (Completion fits it to the context's room)
        out["max_tokens"] = max(n_predict, 1)  # 0: the prompt is evaluated (one token, not returned)
    temperature = body.get("temperature")
    if isinstance(temperature, (int, float)) and not isinstance(temperature, bool) and temperature < 0:
        out["temperature"] = 0.0  # llama.cpp: below zero is greedy
    n_probs = body.get("n_probs", 0)
    if n_probs:
        out["logprobs"] = n_probs
    seed = body.get("seed")
    if seed is not None and seed not in RANDOM_SEEDS:
        out["seed"] = seed
    out["logit_bias"] = _logit_bias(llm, body.get("logit_bias"))
    return out


# llama.cpp's sampler names (and their letters) that this server has, and those it lacks that
# change nothing at their defaults (dry, typical, xtc, top-n-sigma off; penalties as given).
SAMPLER_NAMES = {"top_k": "k", "top_p": "p", "min_p": "m", "temperature": "t"}
INERT_SAMPLERS = {"dry": "d", "typ_p": "y", "typical_p": "y", "xtc": "x", "top_n_sigma": "s", "penalties": "e",
                  "infill": "i"}


def _samplers(value) -> Dict[str, Any]:
    """llama.cpp's `samplers` chain (names, or its letters) as settings: a sampler of top_k /
    top_p / min_p left out of it is off, temperature left out is 1; they must come in that order
    (this sampler's), with the inert ones anywhere."""
    if value is None:
        return {}
    names = list(value) if isinstance(value, str) else value
    letters = {**SAMPLER_NAMES, **INERT_SAMPLERS}
    if not isinstance(names, list) or not all(isinstance(n, str) and (n in letters or n in letters.values())
                                              for n in names):
        raise RequestError(f"'samplers' must list llama.cpp's samplers; this server has {list(SAMPLER_NAMES)}",
                           "samplers")
    used = [n if n in SAMPLER_NAMES else next((k for k, c in SAMPLER_NAMES.items() if c == n), None) for n in names]
    used = [n for n in used if n is not None]
    if used != [n for n in SAMPLER_NAMES if n in used]:
        raise RequestError(f"'samplers' must keep the order {list(SAMPLER_NAMES)}: this server applies them so",
                           "samplers")
    off = {"top_k": ("top_k", 0), "top_p": ("top_p", 1.0), "min_p": ("min_p", 0.0), "temperature": ("temperature", 1.0)}
    return dict(off[n] for n in SAMPLER_NAMES if n not in used)


def _stop_type(c: ChoiceResult) -> str:
    if c.finish_reason == "length":
        return "limit"
    return "word" if isinstance(c.stop_reason, str) else "eos"


class Completion:
    """One POST /completion request: its prompts, parameters and the llama.cpp-shaped results."""

    def __init__(self, server, body: Dict[str, Any]):
        llm = server.llm
        if "prompt" not in body:
            raise RequestError("'prompt' is required", "prompt")
        self.prompts = prompt_ids(llm, body["prompt"])
        self.return_tokens = body.get("return_tokens", False)
        try:
            translated = completion_body(llm, body)
            params, _, self.stream, max_tokens = sampling_params({**translated, "max_tokens": None},
                                                                  max_tokens_default=None, n_ctx=llm.n_ctx, max_n=1)
        except RequestError as e:  # in llama.cpp's field names
            names = {"logprobs": "n_probs", "max_tokens": "n_predict"}
            raise RequestError(e.message.replace("'logprobs'", "'n_probs'"), names.get(e.param, e.param)) from None
        n_predict = translated.get("max_tokens")  # None: up to the context's end
        self.warm_only = n_predict is not None and body.get("n_predict", body.get("max_tokens")) == 0
        self.n_predict = -1 if n_predict is None else (0 if self.warm_only else n_predict)
        self.jobs = []
        for i, ids in enumerate(self.prompts):
            p = params_for_choice(params, 0)
            room = llm.n_ctx - len(ids)  # as llama-server: n_predict past the context stops at its end
            server._fit(p, None if n_predict is None else min(n_predict, max(room, 1)), ids)
            self.jobs.append((i, ids, p))
        self.server, self.params, self.body = server, params, body
        self.t0 = time.perf_counter()
        self.first: Dict[int, float] = {}  # when each prompt's first token came
        self.cached: Dict[int, int] = {}

    def settings(self) -> Dict[str, Any]:
        p = self.params
        return {"n_ctx": self.server.llm.n_ctx, "model": self.server.model_id,
                "n_predict": self.n_predict,
                "seed": p.seed if p.seed is not None else 0xFFFFFFFF, "temperature": p.temperature,
                "top_k": p.top_k or 0, "top_p": p.top_p, "min_p": p.min_p,
                "repeat_penalty": p.repetition_penalty or 1.0, "repeat_last_n": p.repetition_last_n,
                "presence_penalty": p.presence_penalty or 0.0, "frequency_penalty": p.frequency_penalty or 0.0,
                "stop": p.stop or [], "ignore_eos": p.ignore_eos, "n_probs": p.logprobs or 0,
                "grammar": self.body.get("grammar") or "", "stream": self.stream, "samplers": SAMPLERS}

    def seen(self, index: int, d) -> None:
        if d.token_ids and index not in self.first:
            self.first[index] = time.perf_counter()
        self.cached.setdefault(index, d.cached_tokens)

    def result(self, index: int, c: ChoiceResult) -> Dict[str, Any]:
        """The whole result of prompt `index` (the streamed last event's fields too)."""
        ids = self.prompts[index]
        n_gen = 0 if self.warm_only else len(c.token_ids)
        end = time.perf_counter()
        first = self.first.get(index, end)
        cached = self.cached.get(index, 0)
        prompt_ms, gen_ms = 1000 * (first - self.t0), 1000 * (end - first)
        out = {"index": index, "content": "" if self.warm_only else c.text,
               "tokens": list(c.token_ids) if self.return_tokens and not self.warm_only else [],
               "id_slot": -1, "stop": True, "model": self.server.model_id, "tokens_predicted": n_gen,
               "tokens_evaluated": len(ids), "generation_settings": self.settings(),
               "prompt": self.server.llm.detokenize(ids, special=True), "has_new_line": "\n" in c.text,
               # truncated: the context's end came before n_predict (or the model's end) did
               "truncated": not self.warm_only and c.finish_reason == "length" and
               len(ids) + len(c.token_ids) >= self.server.llm.n_ctx,
               "stop_type": "limit" if self.warm_only else _stop_type(c),
               "stopping_word": c.stop_reason if isinstance(c.stop_reason, str) else "", "tokens_cached": cached,
               "timings": {"cache_n": cached, "prompt_n": len(ids) - cached, "prompt_ms": prompt_ms,
                           "prompt_per_token_ms": prompt_ms / max(len(ids) - cached, 1),
                           "prompt_per_second": 1000 * (len(ids) - cached) / prompt_ms if prompt_ms else 0.0,
                           "predicted_n": n_gen, "predicted_ms": gen_ms,
                           "predicted_per_token_ms": gen_ms / max(n_gen, 1),
                           "predicted_per_second": 1000 * n_gen / gen_ms if gen_ms else 0.0}}
        if self.params.logprobs is not None and not self.warm_only:
            out["completion_probabilities"] = token_logprobs(c.logprobs, self.server.pieces, with_ids=True)
        return out


async def completion(server, request: Request, body: Optional[Dict[str, Any]] = None,
                     route: str = "/completion") -> Response:
    """POST /completion (and /completions): llama.cpp server's completion route; infill passes
    the body it made."""
    try:
        if body is None:
            server._check_key(request)
            body = await server._body(request, check_model=False)
        call = Completion(server, body)
    except RequestError as e:
        return server._error(route, e)
    n_prompt = sum(len(ids) for ids in call.prompts)
    if not call.stream:
        def final(results, usage):
            out = [call.result(i, c) for i, c in enumerate(results)]
            return out if len(out) > 1 else out[0]

        return await server._respond(request, route, call.jobs, n_prompt, None, final, False, on_delta=call.seen)

    results = [ChoiceResult() for _ in call.jobs]
    server.metrics.tokens(n_prompt, 0)

    async def sse():
        try:
            async for index, d in server._run_choices(call.jobs):
                call.seen(index, d)
                results[index].add(d, d.logprobs or [])
                if d.token_ids and not call.warm_only:
                    piece = {"index": index, "content": d.text, "tokens": list(d.token_ids), "stop": False,
                             "id_slot": -1, "tokens_predicted": len(results[index].token_ids),
                             "tokens_evaluated": len(call.prompts[index])}
                    if call.params.logprobs is not None:
                        piece["completion_probabilities"] = token_logprobs(d.logprobs or [], server.pieces, with_ids=True)
                    yield f"data: {json.dumps(piece)}\n\n"
                if d.finished:  # the whole result's fields, its text already sent (as llama-server)
                    last = call.result(index, results[index])
                    last.pop("completion_probabilities", None)
                    yield f"data: {json.dumps({**last, 'content': '', 'tokens': []})}\n\n"
        except Exception as e:  # headers are sent: report it in the stream, as llama.cpp does
            logger.exception("stream of %s failed", route)
            yield f"error: {json.dumps({'code': 500, 'message': f'internal server error ({type(e).__name__})', 'type': 'server_error'})}\n\n"
    server.metrics.request_done(route, 200)
    return StreamingResponse(sse(), media_type="text/event-stream")


async def props(server, request: Request) -> Response:
    """GET /props: the server's defaults, context, slots (the engine's sequences), template."""
    try:
        server._check_key(request)
    except RequestError as e:
        return server._error("/props", e)
    llm = server.llm
    m = llm._core()
    server.metrics.request_done("/props", 200)
    params = {"n_predict": -1, "seed": 0xFFFFFFFF, **DEFAULTS, "repeat_penalty": 1.0, "repeat_last_n": 64,
              "presence_penalty": 0.0, "frequency_penalty": 0.0, "stop": [], "ignore_eos": False, "n_probs": 0,
              "grammar": "", "samplers": SAMPLERS}
    return JSONResponse({"default_generation_settings": {"n_ctx": llm.n_ctx, "params": params},
                         "total_slots": server.max_seqs, "model_path": llm.path,
                         "chat_template": llm.chat_template, "modalities": {"vision": False, "audio": False},
                         "bos_token": m.token_text(m.bos_id) if m.bos_id >= 0 else "",
                         "eos_token": m.token_text(m.eos_id) if m.eos_id >= 0 else "",
                         "build_info": f"llmasos {__version__}"})


async def apply_template(server, request: Request) -> Response:
    """POST /apply-template: a chat body ({"messages": [...]}, and tools, chat_template_kwargs,
    add_generation_prompt as the chat route takes them) -> {"prompt": the text the chat template
    writes for that request}."""
    route = "/apply-template"
    try:
        server._check_key(request)
        body = await server._body(request, check_model=False)
        messages, render, _ = chat_prompt(server.llm, body)
        try:
            text = server.llm.chat_prompt_text(messages, **render)
        except chat_template.ChatTemplateError as e:
            raise chat_template_error(e) from None
    except RequestError as e:
        return server._error(route, e)
    server.metrics.request_done(route, 200)
    return JSONResponse({"prompt": text})
