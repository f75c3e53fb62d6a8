"""Validation of OpenAI-style request bodies: every field checked for type and range, so a bad
request gets a clear 400 naming the field instead of disturbing the engine."""
from __future__ import annotations

import dataclasses
import json
import math
from typing import Any, Dict, List, Optional, Tuple

from .logprobs import MAX_LOGPROBS
from .sampling import SamplingParams


class RequestError(Exception):
    def __init__(self, message: str, param: Optional[str] = None, status: int = 400,
                 code: Optional[str] = None, type_: str = "invalid_request_error"):
        super().__init__(message)
        self.message, self.param, self.status, self.code, self.type = message, param, status, code, type_

    def body(self) -> Dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param,
                          "code": self.code}}


MAX_DEPTH = 256  # JSON nesting: the request code (templates, schemas, copies) recurses into values


def _depth(value: Any) -> int:
    """How deep a parsed JSON value nests (a scalar: 0), counted without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, (dict, list)):
            deepest = max(deepest, d + 1)
            stack.extend((x, d + 1) for x in (v.values() if isinstance(v, dict) else v))
    return deepest


def parse_json(text):
    """json.loads for a request body or JSON text inside one (tool-call arguments, a schema) or a
    model's reply: nesting deeper than MAX_DEPTH is a ValueError, as malformed JSON is."""
    try:
        value = json.loads(text)
    except RecursionError:  # (json's own recursion, thousands deep)
        value = None
        deep = True
    else:
        deep = _depth(value) > MAX_DEPTH
    if deep:
        raise ValueError(f"JSON that nests more than {MAX_DEPTH} deep")
    return value


def _num(body, name, lo=None, hi=None, default=None, integer=False):
    v = body.get(name, default)
    if v is None:
        return default
    ok = isinstance(v, int) if integer else isinstance(v, (int, float))
    if isinstance(v, bool) or not ok or (isinstance(v, float) and not math.isfinite(v)):
        raise RequestError(f"'{name}' must be {'an integer' if integer else 'a finite number'}, got {v!r}", name)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise RequestError(f"'{name}' must be between {lo} and {hi}, got {v!r}", name)
    return v


def _bool(body, name, default=False):
    v = body.get(name, default)
    if v is None:
        return default
    if not isinstance(v, bool):
        raise RequestError(f"'{name}' must be a boolean, got {v!r}", name)
    return v


def chat_render_options(body) -> Dict[str, Any]:
    """vLLM's chat request fields for the template (LLM.chat_prompt_ids' keywords):
    add_generation_prompt (default true), continue_final_message (default false) and
    chat_template_kwargs (an object of more template variables)."""
    kwargs = body.get("chat_template_kwargs")
    if kwargs is not None and not isinstance(kwargs, dict):
        raise RequestError("'chat_template_kwargs' must be an object", "chat_template_kwargs")
    return {"add_generation_prompt": _bool(body, "add_generation_prompt", True),
            "continue_final_message": _bool(body, "continue_final_message", False),
            "chat_template_kwargs": kwargs}


def chat_template_error(e: Exception) -> RequestError:
    """A ChatTemplateError as a 400 naming the field at fault."""
    msg = str(e)
    param = next((k for k in ("continue_final_message", "chat_template_kwargs") if msg.startswith(k)), "messages")
    return RequestError(msg, param)


def _stop(body) -> List[str]:
    v = body.get("stop")
    if v is None:
        return []
    stops = [v] if isinstance(v, str) else v
    if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops) or len(stops) > 16:
        raise RequestError("'stop' must be a non-empty string or a list of up to 16 of them", "stop")
    return stops


# Refused by name rather than ignored: each would change what the client gets.
UNSUPPORTED = ("suffix", "tools", "functions", "bad_words", "truncate_prompt_tokens")
# Other servers' sampling fields this one does not have, refused unless they ask for what they
# do when left out (llama.cpp server's and llama-cpp-python's, vLLM's): field -> the values that
# change nothing.
NEUTRAL = {"mirostat": (0,), "mirostat_mode": (0,), "tfs_z": (1, 1.0), "typical_p": (1, 1.0),
           "dry_multiplier": (0, 0.0), "xtc_probability": (0, 0.0), "use_beam_search": (False,),
           "skip_special_tokens": (True,), "length_penalty": (1, 1.0), "top_n_sigma": (-1, -1.0, 0, 0.0),
           "dynatemp_range": (0, 0.0), "n_probs": (0,), "min_keep": (0,)}


def checked_schema(schema, param, leave_out_unsupported=True):
    """The schema compiled (once per request: SamplingParams takes it as is), or a 400 naming
    what it cannot enforce."""
    from .json_schema import compile_schema
    try:
        return compile_schema(schema, leave_out_unsupported)
    except ValueError as e:
        raise RequestError(str(e), param) from None


def constraint_fields(body) -> List[str]:
    """The output-constraint fields a body gives (at most one may stand, and none beside tools).
    response_format {"type": "text"} is OpenAI's default, no constraint, so it does not count."""
    text = isinstance(body.get("response_format"), dict) and body["response_format"].get("type") == "text"
    return [k for k in ("json_schema", "guided_json", "guided_regex", "guided_choice", "guided_grammar", "grammar",
                        "response_format")
            if _given(body, k) and not (k == "response_format" and text)]


def _given(body, name) -> bool:
    """The field is set: not absent or null, and not llama.cpp's "" for no grammar."""
    return body.get(name) is not None and not (name == "grammar" and body[name] == "")


def _grammar(body):
    """llama.cpp server's `grammar` (its default "" is none) or vLLM's `guided_grammar`: GBNF text
    (gbnf.py), compiled once for the request; None when neither is given."""
    for name in ("grammar", "guided_grammar"):
        if not _given(body, name):
            continue
        value = body[name]
        if not isinstance(value, str):
            raise RequestError(f"'{name}' must be a GBNF grammar (a string)", name)
        from .gbnf import compile_grammar
        try:
            return compile_grammar(value)
        except ValueError as e:
            raise RequestError(str(e), name) from None
    return None


def _response_format(body):
    """OpenAI's response_format -> (json_object, json_schema): {"type": "text"} (the default),
    {"type": "json_object"} (JSON mode: the output is one JSON object) or {"type": "json_schema",
    "json_schema": {"name": ..., "schema": {...}, "strict": ...}} (structured outputs; a schema
    keyword the server cannot enforce is refused, not ignored); or instead of it vLLM's
    guided_json / guided_regex / guided_choice, or llama.cpp server's json_schema."""
    guided = constraint_fields(body)
    if len(guided) > 1:
        raise RequestError(f"give one of {' and '.join(guided)}, not several", guided[0])
    for name, compile_ in (("guided_regex", "compile_regex"), ("guided_choice", "compile_choice")):  # vLLM's
        if body.get(name) is not None:
            from . import json_schema
            value = body[name]
            if (name == "guided_regex") != isinstance(value, str):
                raise RequestError(f"'{name}' must be {'a string' if name == 'guided_regex' else 'a list of strings'}", name)
            try:
                return False, getattr(json_schema, compile_)(value)
            except ValueError as e:
                raise RequestError(str(e), name) from None
    for name in ("json_schema", "guided_json"):  # llama.cpp server's and vLLM's own fields
        schema = body.get(name)
        if isinstance(schema, str) and name == "guided_json":
            try:
                schema = parse_json(schema)
            except ValueError:
                raise RequestError("'guided_json' must be a JSON schema (an object or its JSON text)", name) from None
        if schema is not None:
            if not isinstance(schema, dict):
                raise RequestError(f"'{name}' must be a JSON schema object", name)
            return False, checked_schema(schema, name)
    v = body.get("response_format")
    if v is None:
        return False, None
    kind = v.get("type") if isinstance(v, dict) else None
    if kind == "text":
        return False, None
    if kind == "json_object":
        return True, None
    if kind == "json_schema":
        spec = v.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise RequestError("'response_format' of type 'json_schema' needs 'json_schema': {'name': ..., "
                               "'schema': {...}}", "response_format")
        return False, checked_schema(schema, "response_format")
    raise RequestError("'response_format' must be an object whose 'type' is 'text', 'json_object' or "
                       f"'json_schema', got {v!r}", "response_format")


def _logprobs(body, chat: bool) -> Optional[int]:
    """How many alternatives per token to report, or None for no logprobs. Completions (legacy
    API): 'logprobs' is that integer (OpenAI allows 0..5; up to MAX_LOGPROBS here, as vLLM).
    Chat: 'logprobs' is a boolean and 'top_logprobs' (0..20) the count, only with logprobs."""
    if not chat:
        if body.get("top_logprobs") is not None:
            raise RequestError("'top_logprobs' belongs to /v1/chat/completions; on /v1/completions "
                               "'logprobs' is the number of alternatives", "top_logprobs")
        v = body.get("logprobs")
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, int):
            raise RequestError(f"'logprobs' must be an integer between 0 and {MAX_LOGPROBS}, got {v!r}", "logprobs")
        return _num(body, "logprobs", 0, MAX_LOGPROBS, integer=True)
    on = _bool(body, "logprobs")
    k = _num(body, "top_logprobs", 0, MAX_LOGPROBS, None, integer=True)
    if k is not None and not on:
        raise RequestError("'top_logprobs' requires 'logprobs' to be true", "top_logprobs")
    return (k or 0) if on else None


def _logit_bias(body):
    """OpenAI sends {"token id as a string": bias}; biases are in [-100, 100]."""
    v = body.get("logit_bias")
    if v is None:
        return None
    if not isinstance(v, dict) or len(v) > 1024:
        raise RequestError("'logit_bias' must be an object of at most 1024 token ids", "logit_bias")
    out = {}
    for k, b in v.items():
        if not isinstance(k, str) or not (k.isascii() and k.isdigit()):  # "²".isdigit() is True
            raise RequestError(f"'logit_bias' keys must be token ids, got {k!r}", "logit_bias")
        if isinstance(b, bool) or not isinstance(b, (int, float)) or not math.isfinite(b) or abs(b) > 100:
            raise RequestError(f"'logit_bias' values must be numbers in [-100, 100], got {b!r}", "logit_bias")
        out[int(k)] = float(b)
    return out


def _repetition(body) -> Tuple[Optional[float], int]:
    """(repetition_penalty, repetition_last_n): vLLM's repetition_penalty over prompt and output,
    or llama.cpp's repeat_penalty over the last repeat_last_n tokens of them (64 when not given;
    -1 all of them, 0 none)."""
    vllm = _num(body, "repetition_penalty", 0.01, 10.0, None)
    llama = _num(body, "repeat_penalty", 0.01, 10.0, None)
    if vllm is not None and llama is not None:
        raise RequestError("give 'repetition_penalty' or 'repeat_penalty', not both", "repeat_penalty")
    last_n = _num(body, "repeat_last_n", -1, 1 << 30, None, integer=True)
    if last_n is None:
        last_n = 64 if llama is not None else 0
    elif last_n == 0:
        return None, 0  # llama.cpp: the penalty is off
    return (vllm if vllm is not None else llama), max(last_n, 0)


def sampling_params(body: Dict[str, Any], *, max_tokens_default: Optional[int], n_ctx: int,
                    max_n: int, chat: bool = False) -> tuple:
    """(SamplingParams, n, stream, max_tokens or None) from a completions (chat=False) or chat
    body; the caller sets params.max_tokens once the prompt's length is known."""
    for name in UNSUPPORTED:
        if chat and name == "tools":  # the chat route's own (server_tools.py)
            continue
        v = body.get(name)
        if v not in (None, False, 0, {}, []):
            raise RequestError(f"'{name}' is not supported by this server yet", name)
    for name, neutral in NEUTRAL.items():
        v = body.get(name)
        same_type = isinstance(v, bool) == isinstance(neutral[0], bool) or (v is False and 0 in neutral)
        if v is not None and (not same_type or v not in neutral):
            raise RequestError(f"'{name}' other than {neutral[0]!r} is not supported by this server", name)
    max_tokens = body.get("max_tokens", body.get("max_completion_tokens", max_tokens_default))
    if max_tokens is not None:
        max_tokens = _num({"max_tokens": max_tokens}, "max_tokens", 1, n_ctx, integer=True)
    n = _num(body, "n", 1, max_n, 1, integer=True)
    best_of = _num(body, "best_of", 1, max_n, None, integer=True)
    if best_of is not None and best_of != n:
        raise RequestError("'best_of' other than n is not supported", "best_of")
    stop_ids = body.get("stop_token_ids")
    if stop_ids is not None and (not isinstance(stop_ids, list) or not all(
            isinstance(t, int) and not isinstance(t, bool) and 0 <= t < 2**31 for t in stop_ids)):
        raise RequestError("'stop_token_ids' must be a list of token ids (integers in [0, 2^31))",
                           "stop_token_ids")
    json_object, json_schema = _response_format(body)  # (it refuses two constraints at once)
    min_tokens = _num(body, "min_tokens", 0, n_ctx, 0, integer=True)
    repetition, last_n = _repetition(body)
    if body.get("penalize_nl") is False and repetition not in (None, 1, 1.0):  # llama.cpp's: ours penalizes newlines too
        raise RequestError("'penalize_nl' false is not supported with a repetition penalty", "penalize_nl")
    allowed = body.get("allowed_token_ids")
    if allowed is not None and (not isinstance(allowed, list) or not allowed or not all(
            isinstance(t, int) and not isinstance(t, bool) and 0 <= t < 2**31 for t in allowed)):
        raise RequestError("'allowed_token_ids' must be a non-empty list of token ids", "allowed_token_ids")
    if max_tokens is not None and min_tokens > max_tokens:
        raise RequestError(f"'min_tokens' ({min_tokens}) must not exceed 'max_tokens' ({max_tokens})", "min_tokens")
    params = SamplingParams(
        max_tokens=max_tokens or n_ctx,  # (checks only: the caller sets it for the prompt)
        temperature=_num(body, "temperature", 0.0, 2.0, 1.0),
        top_p=_num(body, "top_p", 0.0, 1.0, None),
        top_k=_num(body, "top_k", -1, 1 << 20, None, integer=True),
        min_p=_num(body, "min_p", 0.0, 1.0, None),
        presence_penalty=_num(body, "presence_penalty", -2.0, 2.0, None),
        frequency_penalty=_num(body, "frequency_penalty", -2.0, 2.0, None),
        repetition_penalty=repetition,
        repetition_last_n=last_n,
        seed=_num(body, "seed", -(1 << 63), (1 << 64) - 1, None, integer=True),
        stop=_stop(body) or None,
        stop_token_ids=stop_ids,
        ignore_eos=_bool(body, "ignore_eos"),
        min_tokens=min_tokens,
        include_stop_str_in_output=_bool(body, "include_stop_str_in_output"),
        allowed_token_ids=allowed,
        logit_bias=_logit_bias(body),
        logprobs=_logprobs(body, chat),
        prompt_logprobs=_num(body, "prompt_logprobs", 0, MAX_LOGPROBS, None, integer=True),
        json_object=json_object,
        json_schema=json_schema,
        grammar=_grammar(body),
    )
    stream = _bool(body, "stream")
    if stream and params.prompt_logprobs is not None:
        raise RequestError("'prompt_logprobs' are not available when 'stream' is true (as vLLM)", "prompt_logprobs")
    if params.top_p == 0.0:
        raise RequestError("'top_p' must be greater than 0", "top_p")
    if params.top_k is not None and params.top_k <= 0:
        params.top_k = None  # vLLM convention: -1 / 0 mean off
    try:  # what the engine will check (token id ranges, ...), before the request reaches it
        params.to_core()
    except ValueError as e:
        raise RequestError(str(e)) from None
    return params, n, stream, max_tokens


def include_usage(body: Dict[str, Any], stream: bool) -> bool:
    """OpenAI's stream_options: {"include_usage": true} asks for a last chunk with the usage
    (empty choices) before [DONE]; only with stream, as vLLM and OpenAI check."""
    v = body.get("stream_options")
    if v is None:
        return False
    if not stream:
        raise RequestError("'stream_options' is only allowed when 'stream' is true", "stream_options")
    if not isinstance(v, dict) or not set(v) <= {"include_usage", "continuous_usage_stats"}:
        raise RequestError("'stream_options' must be an object with 'include_usage'", "stream_options")
    return _bool(v, "include_usage")


def params_for_choice(params, choice: int):
    """A copy for choice `choice`: seeded requests give each of the n choices its own seed."""
    p = dataclasses.replace(params)
    if p.seed is not None and choice:
        p.seed = p.seed + choice
    return p
