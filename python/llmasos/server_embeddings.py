"""POST /v1/embeddings, as OpenAI's API (and vLLM's, llama.cpp's servers) answer it:

    {"input": text | [texts] | [token ids] | [[token ids]], "model", "encoding_format": "float" |
     "base64" (little-endian float32, what OpenAI's Python client asks for), "dimensions": n_embd}
 -> {"object": "list", "data": [{"object": "embedding", "index": i, "embedding": ...}], "model",
     "usage": {"prompt_tokens", "total_tokens"}}

Each input is pooled by the model's pooling (embeddings.py) and L2-normalized.

POST /embedding (and /embeddings), llama-server's own form: {"content" (or "input"): llama.cpp's
prompt shapes (text, token ids, both mixed, or a list of prompts; special tokens written out are
read as such), "embd_normalize": -1 none | 0 max-abs scaled to the int16 range | 1 taxicab | 2
Euclidean (default) | p > 2 p-norm} -> [{"index": i, "embedding": [[pooled vector]]}, ...]."""
from __future__ import annotations

import asyncio
import base64
from typing import Any, Dict, List

import numpy as np
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .server_requests import RequestError

MAX_INPUTS = 2048  # OpenAI's limit per request


def parse(llm, body: Dict[str, Any]) -> tuple:
    """(token-id lists, encoding_format), or a RequestError naming the field."""
    inp = body.get("input")
    n = llm.n_vocab

    def is_ids(x):
        return isinstance(x, list) and x and all(isinstance(t, int) and not isinstance(t, bool) for t in x)

    if isinstance(inp, str) or is_ids(inp):
        items = [inp]
    elif isinstance(inp, list) and inp and all(isinstance(x, str) or is_ids(x) for x in inp):
        items = inp
    else:
        raise RequestError("'input' must be a string, a list of strings, a list of token ids, or a list "
                           "of those", "input")
    if len(items) > MAX_INPUTS:
        raise RequestError(f"'input' holds {len(items)} items; at most {MAX_INPUTS}", "input")
    ids_list: List[List[int]] = []
    for x in items:
        if isinstance(x, str):
            if not x:
                raise RequestError("'input' holds an empty string", "input")
            ids = llm.tokenize(x)
        else:
            if any(t < 0 or t >= n for t in x):
                raise RequestError(f"token ids must be in [0, {n})", "input")
            ids = list(x)
        if len(ids) > llm.n_ctx:
            raise RequestError(f"an input has {len(ids)} tokens; this model's context is {llm.n_ctx}",
                               "input", code="context_length_exceeded")
        ids_list.append(ids)
    fmt = body.get("encoding_format", "float")
    if fmt not in ("float", "base64"):
        raise RequestError("'encoding_format' must be 'float' or 'base64'", "encoding_format")
    dims = body.get("dimensions")
    if dims is not None and (isinstance(dims, bool) or dims != llm.n_embd):
        raise RequestError(f"'dimensions' must be this model's {llm.n_embd} (embeddings are not "
                           "truncated)", "dimensions")
    return ids_list, fmt


def response(vectors, ids_list, fmt: str, model_id: str) -> Dict[str, Any]:
    def enc(v):
        return base64.b64encode(v.astype("<f4").tobytes()).decode() if fmt == "base64" else v.tolist()

    n = sum(len(ids) for ids in ids_list)
    return {"object": "list", "model": model_id,
            "data": [{"object": "embedding", "index": i, "embedding": enc(v)} for i, v in enumerate(vectors)],
            "usage": {"prompt_tokens": n, "total_tokens": n}}


def normalized(v: np.ndarray, p: int) -> np.ndarray:
    """llama.cpp's embd_normalize of one pooled vector (its sums in double precision): -1 as it
    is, 0 scaled so its largest magnitude is 32760, else divided by its p-norm (1 taxicab, 2
    Euclidean); a zero vector stays zero."""
    x = v.astype(np.float64)
    if p == -1:
        return v
    if p == 0:
        norm = np.abs(x).max() / 32760.0
    elif p == 2:
        norm = np.sqrt(np.sum(x * x))
    else:
        norm = np.sum(np.abs(x) ** p) ** (1.0 / p)
    scale = 1.0 / norm if norm > 0 else 0.0
    return (v * np.float32(scale)).astype(np.float32)


def parse_llamacpp(llm, body: Dict[str, Any]) -> tuple:
    """(token-id lists, embd_normalize) of a llama-server /embedding body, or a RequestError."""
    from .server_llamacpp import prompt_ids

    field = "input" if "input" in body else "content"
    if field not in body:
        raise RequestError("'content' (or 'input') must be given", "content")
    try:
        ids_list = prompt_ids(llm, body[field])
    except RequestError as e:  # the same shapes as /completion's prompt, under this field's name
        raise RequestError(e.message.replace("prompt", field), field) from None
    if len(ids_list) > MAX_INPUTS:
        raise RequestError(f"'{field}' holds {len(ids_list)} prompts; at most {MAX_INPUTS}", field)
    for ids in ids_list:
        if len(ids) > llm.n_ctx:
            raise RequestError(f"a prompt has {len(ids)} tokens; this model's context is {llm.n_ctx}", field,
                               code="context_length_exceeded")
    p = body.get("embd_normalize", 2)
    if isinstance(p, bool) or not isinstance(p, int) or p < -1:
        raise RequestError("'embd_normalize' must be an integer: -1 (none), 0 (max absolute), 1 (taxicab), "
                           "2 (Euclidean) or p > 2 (p-norm)", "embd_normalize")
    return ids_list, p


async def llamacpp(server, request: Request, route: str = "/embedding") -> Response:
    """POST /embedding and /embeddings: llama-server's non-OpenAI embeddings route."""
    try:
        server._check_key(request)
        ids_list, p = parse_llamacpp(server.llm, await server._body(request, check_model=False))
    except RequestError as e:
        return server._error(route, e)
    # Euclidean is the core's own normalization (the bits /v1/embeddings gives); the others start
    # from the pooled vectors as they are.
    vectors = await asyncio.to_thread(server.llm.embed, ids_list, normalize=p == 2)
    server.metrics.tokens(sum(len(ids) for ids in ids_list), 0)
    server.metrics.request_done(route, 200)
    return JSONResponse([{"index": i, "embedding": [(v if p == 2 else normalized(v, p)).tolist()]}
                         for i, v in enumerate(vectors)])
