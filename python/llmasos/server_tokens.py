"""POST /tokenize and /detokenize in the shapes both vLLM's and llama.cpp's servers answer, so
either one's clients work unchanged:

    /tokenize    {"prompt": text}   (vLLM: the model's BOS rule unless "add_special_tokens": false)
                 {"content": text}  (llama.cpp: none added unless "add_special": true)
                 {"messages": [...]} (vLLM: the chat template's prompt, generation prompt included
                                      unless "add_generation_prompt": false; also
                                      "continue_final_message", "chat_template_kwargs")
              -> {"tokens": [ids], "count": n, "max_model_len": n_ctx}; with vLLM's
                 "return_token_strs": true also "token_strs", with llama.cpp's "with_pieces": true
                 the tokens as [{"id", "piece"}]
    /detokenize  {"tokens": [ids]} -> {"prompt": text, "content": text}
    GET /tokenizer_info  (vLLM's) the special tokens' texts, the chat template and the context
                 size: with /tokenize and /detokenize, what lm-evaluation-harness's "remote"
                 tokenizer reads, so it needs no Hugging Face tokenizer download

Special-token texts in the input are parsed as the tokens they name, as both servers do."""
from __future__ import annotations

from typing import Any, Dict, Optional

from . import chat_template
from .logprobs import TokenPieces
from .server_requests import RequestError, _bool, chat_render_options, chat_template_error


def tokenize(llm, pieces: TokenPieces, body: Dict[str, Any]) -> Dict[str, Any]:
    given = [k for k in ("prompt", "content", "messages") if k in body]
    if len(given) != 1:
        raise RequestError("give exactly one of 'prompt', 'content' (text) or 'messages' (a chat)",
                           given[1] if len(given) > 1 else "prompt")
    key = given[0]
    if key == "messages":
        try:
            ids = llm.chat_prompt_ids(body["messages"], **chat_render_options(body))
        except chat_template.ChatTemplateError as e:
            raise chat_template_error(e) from None
    else:
        text = body[key]
        if not isinstance(text, str):
            raise RequestError(f"'{key}' must be a string", key)
        add = _bool(body, "add_special_tokens", True) if key == "prompt" else _bool(body, "add_special", False)
        # Adding special tokens adds what the model's tokenizer adds (BOS only where it asks).
        ids = llm.tokenize(text, add_bos=None if add else False, special=True)
    out: Dict[str, Any] = {"tokens": ids, "count": len(ids), "max_model_len": llm.n_ctx}
    if _bool(body, "return_token_strs", False):
        out["token_strs"] = [pieces.text(i) for i in ids]
    if _bool(body, "with_pieces", False):
        out["tokens"] = [{"id": i, "piece": pieces.text(i)} for i in ids]
    return out


def tokenizer_info(llm) -> Dict[str, Any]:
    m = llm._core()

    def text(token_id) -> Optional[str]:
        ok = isinstance(token_id, int) and not isinstance(token_id, bool) and 0 <= token_id < llm.n_vocab
        return m.token_text(token_id) if ok else None

    return {"tokenizer_class": f"gguf-{llm.metadata('tokenizer.ggml.model') or 'unknown'}",
            "bos_token": text(m.bos_id), "eos_token": text(m.eos_id),
            "pad_token": text(llm.metadata("tokenizer.ggml.padding_token_id")),
            "unk_token": text(llm.metadata("tokenizer.ggml.unknown_token_id")),
            "add_bos_token": bool(m.add_bos), "model_max_length": llm.n_ctx,
            "chat_template": llm.chat_template}


def detokenize(llm, body: Dict[str, Any]) -> Dict[str, Any]:
    ids = body.get("tokens")
    n = llm.n_vocab
    if not isinstance(ids, list) or not all(isinstance(t, int) and not isinstance(t, bool) and 0 <= t < n
                                            for t in ids):
        raise RequestError(f"'tokens' must be a list of token ids in [0, {n})", "tokens")
    text = llm.detokenize(ids, special=True)
    return {"prompt": text, "content": text}
