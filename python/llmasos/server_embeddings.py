"""POST /v1/embeddings, as OpenAI's API (and vLLM's, llama.cpp's servers) answer it:

    {"input": text | [texts] | [token ids] | [[token ids]], "model", "encoding_format": "float" |
     "base64" (little-endian float32, what OpenAI's Python client asks for), "dimensions": n_embd}
 -> {"object": "list", "data": [{"object": "embedding", "index": i, "embedding": ...}], "model",
     "usage": {"prompt_tokens", "total_tokens"}}

Each input is pooled by the model's pooling (embeddings.py) and L2-normalized."""
from __future__ import annotations

import base64
from typing import Any, Dict, List

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
