"""llama-server's POST /infill, code infill for editor plugins: /completion (server_llamacpp.py)
over the model's fill-in-the-middle prompt, its tokens found in the GGUF's keys or by their texts."""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from starlette.requests import Request
from starlette.responses import Response

from .server_llamacpp import completion
from .server_requests import RequestError


# Fill-in-the-middle tokens: the GGUF's key (or the older one), then the texts models give them.
FIM = {"pre": (("tokenizer.ggml.fim_pre_token_id", "tokenizer.ggml.prefix_token_id"),
               ("<fim_prefix>", "<|fim_prefix|>", "<PRE>", "<fim-prefix>")),
       "suf": (("tokenizer.ggml.fim_suf_token_id", "tokenizer.ggml.suffix_token_id"),
               ("<fim_suffix>", "<|fim_suffix|>", "<SUF>", "<fim-suffix>")),
       "mid": (("tokenizer.ggml.fim_mid_token_id", "tokenizer.ggml.middle_token_id"),
               ("<fim_middle>", "<|fim_middle|>", "<MID>", "<fim-middle>")),
       "rep": (("tokenizer.ggml.fim_rep_token_id",), ("<reponame>", "<|repo_name|>", "<repo_name>")),
       "sep": (("tokenizer.ggml.fim_sep_token_id",), ("<file_sep>", "<|file_sep|>", "<file_separator>"))}


def fim_tokens(llm) -> Dict[str, Optional[int]]:
    """The model's fill-in-the-middle token ids by role (None where it has none)."""
    out: Dict[str, Optional[int]] = {}
    for role, (keys, texts) in FIM.items():
        found = next((v for v in (llm.metadata(k) for k in keys) if isinstance(v, int) and 0 <= v < llm.n_vocab),
                     None)
        if found is None:
            text = next((t for t in texts if llm._is_token(t)), None)
            found = llm.tokenize(text, add_bos=False, special=True)[0] if text else None
        out[role] = found
    return out


def server_fim(server) -> Dict[str, Optional[int]]:
    """The served model's fill-in-the-middle tokens, found on first use and kept on the server."""
    if server.fim is None:
        server.fim = fim_tokens(server.llm)
    return server.fim


def infill_prompt(llm, body: Dict[str, Any], fim: Dict[str, Optional[int]]) -> List[int]:
    """llama-server's infill prompt: the extra files (the repository form, with the model's
    repo-name and file-separator tokens, else their text), then the prefix, suffix and middle
    tokens around input_prefix + prompt and input_suffix (PSM order; prompt is the cursor line's
    text before the cursor), cut to fit as llama-server cuts them: of a batch of B tokens
    (min(2048, n_ctx / 2)) the prefix keeps its last 3B/4, the suffix its first B/4 less the
    prompt, and the extra files their last tokens up to n_ctx - B - 2 n_predict; an editor sends
    whole files and a prompt past the context was a 400."""
    if None in (fim["pre"], fim["suf"], fim["mid"]):
        raise RequestError("this model has no fill-in-the-middle tokens (prefix, suffix, middle)", "input_prefix")
    texts = {}
    for name in ("input_prefix", "input_suffix", "prompt"):
        texts[name] = body.get(name, "")
        if not isinstance(texts[name], str):
            raise RequestError(f"'{name}' must be a string", name)
    extra = body.get("input_extra", [])
    if not isinstance(extra, list) or not all(isinstance(c, dict) and isinstance(c.get("text"), str) and
                                              isinstance(c.get("filename", ""), str) for c in extra):
        raise RequestError("'input_extra' must be a list of {'filename': ..., 'text': ...}", "input_extra")
    n_predict = body.get("n_predict", -1)
    n_predict = n_predict if isinstance(n_predict, int) and not isinstance(n_predict, bool) else -1
    tok = lambda s: llm.tokenize(s, add_bos=False)  # (the user's code: no special tokens read in it)
    ids: List[int] = []
    if fim["rep"] is not None and fim["sep"] is not None:
        ids += [fim["rep"]] + tok("myproject\n")
        for c in extra:
            ids += [fim["sep"]] + tok(c.get("filename", "") + "\n") + tok(c["text"])
        ids += [fim["sep"]] + tok("filename\n")
    else:
        for c in extra:
            ids += tok(c["text"])
    prefix, suffix, prompt = tok(texts["input_prefix"]), tok(texts["input_suffix"]), tok(texts["prompt"])
    batch = min(2048, llm.n_ctx // 2)
    prefix = prefix[len(prefix) - min(len(prefix), 3 * (batch // 4)):]
    suffix = suffix[:max(0, min(len(suffix), batch // 4 - (2 + len(prompt))))]
    n_extra = min(max(0, llm.n_ctx - batch - 2 * n_predict), len(ids))
    ids = ids[len(ids) - n_extra:] + [fim["pre"]] + prefix + prompt + [fim["suf"]] + suffix + [fim["mid"]]
    m = llm._core()
    return ([m.bos_id] if m.add_bos and m.bos_id >= 0 else []) + ids


async def infill(server, request: Request) -> Response:
    """POST /infill: llama-server's code infill, /completion over the model's fill-in-the-middle
    prompt (infill_prompt), with all of /completion's options."""
    try:
        server._check_key(request)
        body = await server._body(request, check_model=False)
        ids = infill_prompt(server.llm, body, server_fim(server))
    except RequestError as e:
        return server._error("/infill", e)
    return await completion(server, request, {**body, "prompt": ids}, route="/infill")
