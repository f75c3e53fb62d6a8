"""The Responses API's request (POST /v1/responses) checked and written as a chat request:
instructions and input items become messages, function tools and tool_choice chat's, text.format
chat's response_format, max_output_tokens max_tokens; previous_response_id puts a stored
response's input and output first. server_responses.py runs it and writes the reply back."""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from .server_requests import RequestError

# Fields of the chat route (sampling, the template's kwargs) that a Responses request may carry
# too: vLLM's extra parameters, which the openai client sends as extra_body.
EXTRA_SAMPLING = ("seed", "top_k", "min_p", "presence_penalty", "frequency_penalty", "repetition_penalty",
                  "stop", "stop_token_ids", "ignore_eos", "min_tokens", "logit_bias", "allowed_token_ids",
                  "include_stop_str_in_output", "chat_template_kwargs")
# Fields taken as given because they change nothing the model writes (echoed where OpenAI does).
PASSIVE = ("model", "metadata", "user", "safety_identifier", "prompt_cache_key", "service_tier",
           "stream_options", "prompt_cache_retention")
KNOWN = {"input", "instructions", "previous_response_id", "tools", "tool_choice", "parallel_tool_calls",
         "text", "max_output_tokens", "temperature", "top_p", "top_logprobs", "include", "stream", "store",
         "reasoning", "truncation", "background", "max_tool_calls", *EXTRA_SAMPLING, *PASSIVE}
LOGPROBS_INCLUDE = "message.output_text.logprobs"

def _text_parts(content: Any, where: str) -> str:
    """A message's content: a string, or input_text / output_text parts (joined as they stand)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise RequestError(f"{where}: 'content' must be a string or a list of text parts", "input")
    texts = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text") and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind == "refusal" and isinstance(part.get("refusal"), str):
            texts.append(part["refusal"])
        else:
            raise RequestError(f"{where}: only text content parts (input_text, output_text) are supported, "
                               f"got {kind!r}", "input")
    return "".join(texts)


def input_messages(items: Any) -> List[Dict[str, Any]]:
    """The input (a string, or a list of items) as chat messages: messages keep their role
    (developer becomes system), function_call items become the assistant's tool_calls (calls in
    a row join one message, as parallel calls), function_call_output items tool messages.
    Reasoning items are left out: a chat template writes no earlier turn's reasoning."""
    if isinstance(items, str):
        return [{"role": "user", "content": items}]
    if not isinstance(items, list) or not items:
        raise RequestError("'input' must be a non-empty string or a non-empty list of input items", "input")
    out: List[Dict[str, Any]] = []
    for i, item in enumerate(items):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise RequestError(f"{where} must be an object", "input")
        kind = item.get("type", "message" if "role" in item else None)
        if kind == "message":
            role = item.get("role")
            if role not in ("user", "assistant", "system", "developer"):
                raise RequestError(f"{where}: 'role' must be user, assistant, system or developer, got {role!r}",
                                   "input")
            out.append({"role": "system" if role == "developer" else role,
                        "content": _text_parts(item.get("content"), where)})
        elif kind == "function_call":
            call_id, name, args = item.get("call_id"), item.get("name"), item.get("arguments")
            if not all(isinstance(v, str) for v in (call_id, name, args)):
                raise RequestError(f"{where}: a function_call needs string 'call_id', 'name' and 'arguments'",
                                   "input")
            call = {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}
            if out and out[-1]["role"] == "assistant":  # the reply's text, then its calls
                out[-1].setdefault("tool_calls", []).append(call)
            else:
                out.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            call_id, output = item.get("call_id"), item.get("output")
            if not isinstance(call_id, str) or not isinstance(output, (str, list)):
                raise RequestError(f"{where}: a function_call_output needs a string 'call_id' and 'output'",
                                   "input")
            out.append({"role": "tool", "tool_call_id": call_id, "content": _text_parts(output, where)})
        elif kind == "reasoning":
            continue
        else:
            raise RequestError(f"{where}: input items of type {kind!r} are not supported (message, "
                               "function_call, function_call_output and reasoning are)", "input")
    return out


def input_items(items: Any, new_id) -> List[Dict[str, Any]]:
    """The (checked) input as the items GET /v1/responses/{id}/input_items lists: a string as a
    user message, text content as parts, each item with an id (new_id(prefix)) and a status."""
    if isinstance(items, str):
        items = [{"role": "user", "content": items}]
    out = []
    for item in items:
        kind = item.get("type", "message")
        it = {**item, "type": kind, "status": item.get("status") or "completed"}
        if kind == "message":
            part = "output_text" if item["role"] == "assistant" else "input_text"
            if isinstance(item["content"], str):
                it["content"] = [{"type": part, "text": item["content"]}]
        it.setdefault("id", new_id({"message": "msg", "function_call": "fc", "reasoning": "rs"}.get(kind, "fco")))
        out.append(it)
    return out


def output_messages(output: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """A stored response's output items as the chat messages that continue from it."""
    items = [{"type": "message", "role": "assistant", "content": it["content"]} if it["type"] == "message"
             else it for it in output]
    return input_messages(items) if items else []


def _tools(body) -> Optional[List[Dict[str, Any]]]:
    tools = body.get("tools")
    if tools is None or tools == []:
        return None
    if not isinstance(tools, list):
        raise RequestError("'tools' must be a list of function tools", "tools")
    out = []
    for t in tools:
        if not isinstance(t, dict) or t.get("type") != "function":
            kind = t.get("type") if isinstance(t, dict) else t
            raise RequestError(f"only function tools are supported, got {kind!r}", "tools")
        fn = {k: t[k] for k in ("name", "description", "parameters", "strict") if t.get(k) is not None}
        out.append({"type": "function", "function": fn})
    return out


def _tool_choice(body):
    v = body.get("tool_choice")
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, dict) and v.get("type") == "function" and isinstance(v.get("name"), str):
        return {"type": "function", "function": {"name": v["name"]}}
    raise RequestError("'tool_choice' must be 'none', 'auto', 'required' or {'type': 'function', 'name': ...}",
                       "tool_choice")


def _response_format(body) -> Optional[Dict[str, Any]]:
    """text.format as chat's response_format."""
    text = body.get("text")
    if text is None:
        return None
    fmt = text.get("format") if isinstance(text, dict) else None
    if not isinstance(text, dict) or not set(text) <= {"format", "verbosity"} or (
            fmt is not None and not isinstance(fmt, dict)):
        raise RequestError("'text' must be an object with a 'format'", "text")
    if text.get("verbosity") not in (None, "medium"):
        raise RequestError("'text.verbosity' other than 'medium' is not supported", "text")
    if fmt is None or fmt.get("type") == "text":
        return None
    if fmt.get("type") == "json_object":
        return {"type": "json_object"}
    if fmt.get("type") == "json_schema":
        if not isinstance(fmt.get("schema"), dict) or not isinstance(fmt.get("name", ""), str):
            raise RequestError("'text.format' of type 'json_schema' needs a 'schema' object (and a string 'name')",
                               "text")
        return {"type": "json_schema", "json_schema": {k: fmt[k] for k in ("name", "schema", "strict") if k in fmt}}
    raise RequestError("'text.format' must be of type 'text', 'json_object' or 'json_schema'", "text")


class ResponsesRequest:
    """One POST /v1/responses body checked and turned into a chat body (self.chat_body);
    previous_response_id is looked up in `stored` (server_responses.ResponseStore)."""

    def __init__(self, body: Dict[str, Any], stored):
        unknown = sorted(set(body) - KNOWN)
        if unknown:
            raise RequestError(f"unknown field '{unknown[0]}' for /v1/responses", unknown[0])
        if body.get("max_tool_calls") is not None:
            raise RequestError(f"'max_tool_calls' {body['max_tool_calls']!r} is not supported by this server",
                               "max_tool_calls")
        truncation = body.get("truncation")
        if truncation not in (None, "disabled", "auto"):
            raise RequestError("'truncation' must be 'auto' or 'disabled'", "truncation")
        self.truncation = truncation or "disabled"
        reasoning = body.get("reasoning")
        if reasoning is not None and (not isinstance(reasoning, dict) or any(v is not None for v in reasoning.values())
                                      or not set(reasoning) <= {"effort", "summary", "generate_summary"}):
            raise RequestError("'reasoning' settings (effort, summary) are not supported: a thinking model "
                               "thinks as its chat template says", "reasoning")
        include = body.get("include")
        include = [] if include is None else include
        if not isinstance(include, list) or any(v != LOGPROBS_INCLUDE for v in include):
            raise RequestError(f"'include' may only list {LOGPROBS_INCLUDE!r}", "include")
        for name, kind in (("user", str), ("safety_identifier", str), ("prompt_cache_key", str),
                           ("service_tier", str), ("stream_options", dict), ("parallel_tool_calls", bool),
                           ("prompt_cache_retention", str)):
            if body.get(name) is not None and not isinstance(body[name], kind):
                raise RequestError(f"'{name}' must be {'a string' if kind is str else 'an object' if kind is dict else 'a boolean'}",
                                   name)
        # As OpenAI: the output's logprobs come with the include entry; top_logprobs says how many
        # alternatives each has.
        self.logprobs = LOGPROBS_INCLUDE in include
        top = body.get("top_logprobs")
        meta = body.get("metadata")
        if meta is not None and (not isinstance(meta, dict) or len(meta) > 16 or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in meta.items())):
            raise RequestError("'metadata' must be an object of at most 16 string values", "metadata")
        store = body.get("store", True)
        if not isinstance(store, bool):
            raise RequestError("'store' must be a boolean", "store")
        self.body, self.store = body, store
        # Background: answered at once (queued), run on the server, polled by GET, cancelled by
        # POST .../cancel; as vLLM, only stored, and here not streamed (no resumable event log).
        background = body.get("background")
        if background is not None and not isinstance(background, bool):
            raise RequestError("'background' must be a boolean", "background")
        self.background = bool(background)
        if self.background and not store:
            raise RequestError("'background' can only be used when 'store' is true", "background")
        if self.background and body.get("stream"):
            raise RequestError("'background' with 'stream' is not supported by this server (poll GET "
                               "/v1/responses/{id} instead)", "background")
        instructions = body.get("instructions")
        if instructions is not None and not isinstance(instructions, str):
            raise RequestError("'instructions' must be a string", "instructions")
        messages = []
        prev_id = body.get("previous_response_id")
        if prev_id is not None:  # its input and output go before this input; its instructions do not
            prev = stored.get(prev_id) if isinstance(prev_id, str) else None
            if prev is None:
                raise RequestError(f"no stored response with id {prev_id!r}", "previous_response_id", status=404,
                                   code="previous_response_not_found")
            messages += prev.messages + output_messages(prev.response["output"])
        if "input" not in body:
            raise RequestError("'input' is required", "input")
        messages += input_messages(body["input"])
        self.history = messages  # what a later previous_response_id continues from
        chat: Dict[str, Any] = {"messages": ([{"role": "system", "content": instructions}] if instructions else [])
                                + messages}
        for name in ("temperature", "top_p", "parallel_tool_calls", "stream", *EXTRA_SAMPLING):
            if name in body:
                chat[name] = body[name]
        if body.get("max_output_tokens") is not None:
            chat["max_tokens"] = body["max_output_tokens"]
        if self.logprobs:
            chat["logprobs"] = True
        if top is not None:
            if not self.logprobs and not (isinstance(top, int) and not isinstance(top, bool) and 0 <= top <= 20):
                raise RequestError("'top_logprobs' must be an integer between 0 and 20", "top_logprobs")
            if self.logprobs:
                chat["top_logprobs"] = top
        tools, choice, fmt = _tools(body), _tool_choice(body), _response_format(body)
        if tools:
            chat["tools"] = tools
        if choice is not None:
            chat["tool_choice"] = choice
        if fmt is not None:
            chat["response_format"] = fmt
        self.chat_body = chat
        self.parallel = body.get("parallel_tool_calls", True)  # the route sets what the tools take

    def drop_oldest(self) -> bool:
        """truncation 'auto': leaves the chat body's oldest input message out (the instructions'
        system message stays, and so does the last message), with the tool results that would
        be left without their call; False when there is nothing left to drop."""
        msgs = self.chat_body["messages"]
        first = 1 if self.body.get("instructions") else 0
        if len(msgs) - first < 2:
            return False
        del msgs[first]
        while len(msgs) - first > 1 and msgs[first]["role"] == "tool":
            del msgs[first]
        return True

    def chat_error(self, e: RequestError) -> RequestError:
        """A chat request's error in this API's words (its field names)."""
        names = {"max_tokens": "max_output_tokens", "prompt": "input", "messages": "input", "response_format": "text"}
        msg = e.message
        for chat_name, name in names.items():
            msg = msg.replace(f"'{chat_name}'", f"'{name}'")
        return RequestError(msg, names.get(e.param, e.param), e.status, e.code, e.type)

    def response(self, rid: str, created: float, model: str, output, status: str, usage=None) -> Dict[str, Any]:
        """The Response object: this request's settings around `output`."""
        b = self.body
        tools = [{"type": "function", "name": t["name"], "description": t.get("description"),
                  "parameters": t.get("parameters"), "strict": t.get("strict")} for t in (b.get("tools") or [])]
        return {"id": rid, "object": "response", "created_at": created, "model": model, "status": status,
                "output": output, "error": None,
                "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
                "instructions": b.get("instructions"), "max_output_tokens": b.get("max_output_tokens"),
                "parallel_tool_calls": self.parallel,
                "previous_response_id": b.get("previous_response_id"), "store": self.store,
                "temperature": b.get("temperature", 1.0), "top_p": b.get("top_p", 1.0),
                "top_logprobs": b.get("top_logprobs"), "tool_choice": b.get("tool_choice", "auto"),
                "tools": tools, "text": b.get("text") or {"format": {"type": "text"}}, "truncation": self.truncation,
                "metadata": b.get("metadata") or {}, "user": b.get("user"), "reasoning": None,
                "background": self.background, "usage": usage}
