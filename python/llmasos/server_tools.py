"""OpenAI function calling ("tools" on /v1/chat/completions) for a model of any chat template, in
the generic form llama.cpp's server uses for templates without a tool syntax of their own: the
tools are described to the model in the system message, and its reply is held by structured
outputs to one JSON object,

    {"tool_call": {"name": NAME, "arguments": {...}}}   a call, its arguments valid under the
                                                         tool's "parameters" schema,
    {"tool_calls": [{"name": ..., "arguments": ...}, ...]}   with parallel_tool_calls: true, or
    {"response": "..."}                                  a plain answer (tool_choice "auto").

tool_choice "auto" (the default with tools) allows both, "required" and a named function only
calls, "none" neither (the request runs as a plain chat). Earlier turns go back to the model in
the same form: an assistant turn's tool_calls as its JSON, a "tool" message as a user turn that
names the call it answers.
"""
from __future__ import annotations

import json
import uuid
from typing import Any, Dict, List, Optional, Tuple

from .server_requests import RequestError, checked_schema, constraint_fields, parse_json

CALL_PREFIX = '{"tool_call":'
CALLS_PREFIX = '{"tool_calls":['
RESPONSE_PREFIX = '{"response":"'
MAX_PARALLEL = 8  # calls in one reply with parallel_tool_calls


def _tools(body) -> List[Dict[str, Any]]:
    tools = body.get("tools")
    if not isinstance(tools, list) or not tools:
        raise RequestError("'tools' must be a non-empty list of {'type': 'function', 'function': {...}}", "tools")
    out, names = [], set()
    for i, t in enumerate(tools):
        f = t.get("function") if isinstance(t, dict) and t.get("type") == "function" else None
        name = f.get("name") if isinstance(f, dict) else None
        if not isinstance(name, str) or not name:
            raise RequestError(f"tools[{i}] must be {{'type': 'function', 'function': {{'name': ..., ...}}}}", "tools")
        if name in names:
            raise RequestError(f"tools[{i}]: the name {name!r} is given twice", "tools")
        params = f.get("parameters", {"type": "object", "properties": {}})
        if not isinstance(params, dict):
            raise RequestError(f"tools[{i}] ({name}): 'parameters' must be a JSON schema object", "tools")
        names.add(name)
        out.append({"name": name, "description": f.get("description", ""), "parameters": params})
    return out


def _choice(body, tools) -> Tuple[str, Optional[str]]:
    """('auto' | 'required' | 'none', the one function's name or None)."""
    v = body.get("tool_choice", "auto")
    if v in ("auto", "required", "none"):
        return v, None
    name = v.get("function", {}).get("name") if isinstance(v, dict) and v.get("type") == "function" else None
    if not isinstance(name, str):
        raise RequestError("'tool_choice' must be 'auto', 'required', 'none' or "
                           "{'type': 'function', 'function': {'name': ...}}", "tool_choice")
    if name not in {t["name"] for t in tools}:
        raise RequestError(f"'tool_choice' names {name!r}, which is not among the tools", "tool_choice")
    return "required", name


def call_schema(tools, only: Optional[str], args_key: str = "arguments") -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """(the schema of one call {"name": ..., args_key: ...} to any of the tools, or to `only`;
    the tools' definitions). Each tool's parameters sit under the reply's root, so their $defs
    (Pydantic's) move up to it: the root must carry the definitions."""
    defs: Dict[str, Dict[str, Any]] = {"$defs": {}, "definitions": {}}
    calls = []
    for t in tools:
        if only is not None and t["name"] != only:
            continue
        params = dict(t["parameters"])
        for key in defs:
            moved = params.pop(key, None) or {}
            if not isinstance(moved, dict):
                raise RequestError(f"tool {t['name']}: '{key}' must be an object of schemas", "tools")
            for name, d in moved.items():
                if defs[key].setdefault(name, d) != d:
                    raise RequestError(f"two tools define {key}/{name} differently", "tools")
        calls.append({"type": "object", "additionalProperties": False, "required": ["name", args_key],
                      "properties": {"name": {"const": t["name"]}, args_key: params}})
    return calls[0] if len(calls) == 1 else {"anyOf": calls}, {k: v for k, v in defs.items() if v}


def reply_schema(tools, mode: str, only: Optional[str], parallel: bool = False) -> Dict[str, Any]:
    one, defs = call_schema(tools, only)
    if parallel:
        call = {"type": "object", "additionalProperties": False, "required": ["tool_calls"], "properties": {
            "tool_calls": {"type": "array", "items": one, "minItems": 1, "maxItems": MAX_PARALLEL}}}
    else:
        call = {"type": "object", "additionalProperties": False, "required": ["tool_call"],
                "properties": {"tool_call": one}}
    answer = {"type": "object", "additionalProperties": False, "required": ["response"],
              "properties": {"response": {"type": "string"}}}
    root = call if mode == "required" else {"anyOf": [call, answer]}
    return {**root, **defs}


def _system_text(tools, mode: str, only: Optional[str], parallel: bool) -> str:
    listed = "\n".join(json.dumps(t, ensure_ascii=False) for t in tools if only is None or t["name"] == only)
    if parallel:
        how = ('To call tools, reply with {"tool_calls": [{"name": <tool name>, "arguments": <its arguments>}, '
               '...]}.')
    else:
        how = 'To call a tool, reply with {"tool_call": {"name": <tool name>, "arguments": <its arguments>}}.'
    if mode == "auto":
        how += ' To answer without a tool, reply with {"response": <your answer>}.'
    return f"You can call these tools:\n{listed}\n{how}"


def _history(messages, parallel: bool) -> List[Dict[str, Any]]:
    """Earlier tool calls and results in the reply form the model is held to (see the module)."""
    if not isinstance(messages, list):
        return messages  # the template's validation names the problem
    names = {}
    out = []
    for m in messages:
        if not isinstance(m, dict):
            out.append(m)
            continue
        calls = m.get("tool_calls")
        if m.get("role") == "assistant" and calls:
            parts = []
            for c in calls if isinstance(calls, list) else [None]:
                f = c.get("function") if isinstance(c, dict) else None
                try:
                    args = f.get("arguments") or "{}"
                    args = parse_json(args) if isinstance(args, str) else args  # (an object, as transformers')
                    if not isinstance(args, dict):
                        raise TypeError
                except (AttributeError, TypeError, ValueError):
                    raise RequestError("an assistant message's tool_calls must be a list of {'id': ..., 'function': "
                                       "{'name': ..., 'arguments': JSON text}}", "messages") from None
                if isinstance(c.get("id"), str):
                    names[c["id"]] = f.get("name")
                parts.append({"name": f.get("name"), "arguments": args})
            text = json.dumps({"tool_calls": parts}, ensure_ascii=False) if parallel else \
                "\n".join(json.dumps({"tool_call": p}, ensure_ascii=False) for p in parts)
            out.append({"role": "assistant", "content": text})
        elif m.get("role") == "tool":
            call_id = m.get("tool_call_id")
            name = (names.get(call_id) if isinstance(call_id, str) else None) or m.get("name") or "the tool"
            content = m.get("content")
            out.append({"role": "user", "content": [{"type": "text", "text": f"Result of {name}:"}]
                        + (content if isinstance(content, list) else [{"type": "text", "text": content}])})
        else:
            out.append(m)
    return out


def _complete(text: str) -> bool:
    try:
        parse_json(text)
        return True
    except ValueError:
        return False


def request_head(body, parallel_default: bool) -> Tuple[List[Dict[str, Any]], str, Optional[str], bool]:
    """(tools, tool_choice mode, the one function or None, parallel_tool_calls) of a request with
    tools, each checked (a 400 naming the field); other output constraints only with "none"."""
    tools = _tools(body)
    mode, only = _choice(body, tools)
    other = constraint_fields(body)
    if other and mode != "none":
        raise RequestError(f"'tools' together with '{other[0]}' is not supported", "tools")
    parallel = body.get("parallel_tool_calls", parallel_default)
    if not isinstance(parallel, bool):
        raise RequestError("'parallel_tool_calls' must be a boolean", "parallel_tool_calls")
    return tools, mode, only, parallel


class ToolRequest:
    """The tools of one chat request: its messages for the template, the reply schema, and the
    reply turned back into OpenAI's message (tool_calls or content), whole or streamed."""

    def __init__(self, body):
        self.tools, self.mode, self.only, self.parallel = request_head(body, False)
        self.schema = reply_schema(self.tools, self.mode, self.only, self.parallel)

    def template_kwargs(self, given: Optional[dict]) -> Optional[dict]:
        return given  # the tools go in the system message instead

    def compiled_schema(self):
        # (A tool whose parameters cannot be enforced is refused, not left out of the choice.)
        return None if self.mode == "none" else checked_schema(self.schema, "tools", leave_out_unsupported=False)

    @staticmethod
    def stream() -> "ToolStream":
        return ToolStream()

    def messages(self, messages):
        msgs = _history(messages, self.parallel)
        if not isinstance(msgs, list) or not msgs or self.mode == "none":
            return msgs  # ("none": a plain chat, its history in the same form)
        text = _system_text(self.tools, self.mode, self.only, self.parallel)
        first = msgs[0]
        if isinstance(first, dict) and first.get("role") == "system" and isinstance(first.get("content"), str):
            return [{**first, "content": first["content"] + "\n\n" + text}] + msgs[1:]
        return [{"role": "system", "content": text}] + msgs

    @staticmethod
    def message(text: str, finish_reason: Optional[str]) -> Tuple[Dict[str, Any], Optional[str]]:
        """(the assistant message, finish_reason) for a whole reply, read as the stream reads it
        (so the arguments are the model's own text, whole or streamed; a reply cut short by
        max_tokens gives what there is)."""
        ts = ToolStream()
        deltas = ts.feed(text, True)
        if ts.kind != "call" or not deltas:
            return {"role": "assistant", "content": "".join(d.get("content", "") for d in deltas)}, finish_reason
        calls: List[Dict[str, Any]] = []
        for d in deltas:
            for tc in d["tool_calls"]:
                if "id" in tc:
                    calls.append({"id": tc["id"], "type": "function",
                                  "function": {"name": tc["function"]["name"], "arguments": ""}})
                calls[tc["index"]]["function"]["arguments"] += tc["function"].get("arguments", "")
        reason = "tool_calls" if finish_reason == "stop" and _complete(text) else finish_reason
        return {"role": "assistant", "content": None, "tool_calls": calls}, reason


class ToolStream:
    """One choice's streamed reply as OpenAI deltas: the answer's text as content while it comes,
    or the tool calls (each one's index, id and name, then its arguments' text as it comes: a
    small JSON scanner finds where they end)."""

    def __init__(self):
        self.buf = ""
        self.at = 0          # the answer: where its unread text starts; calls: where parsing is
        self.kind = None     # "call" or "response"
        self.calls = 0       # calls started
        self.phase = "head"  # calls: "head" (name), "args", "after" (the call's '}' and what follows)
        self.depth = 0       # the arguments' open brackets, and whether inside a string / an escape
        self.in_str = self.esc = False
        self.started = False

    def complete(self) -> bool:
        """The reply is a whole document (not one cut short by max_tokens or a stop string)."""
        return _complete(self.buf)

    def ended_in_call(self) -> bool:
        """The reply is a whole call (finish_reason tool_calls)."""
        return self.kind == "call" and self.complete()

    def feed(self, text: str, finished: bool) -> List[Dict[str, Any]]:
        self.buf += text
        if self.kind is None:
            for prefix, kind in ((CALL_PREFIX, "call"), (CALLS_PREFIX, "call"), (RESPONSE_PREFIX, "response")):
                if self.buf.startswith(prefix):
                    self.kind, self.at = kind, len(prefix)
            if self.kind is None:
                if not finished and any(p.startswith(self.buf) for p in (CALL_PREFIX, CALLS_PREFIX, RESPONSE_PREFIX)):
                    return []
                self.kind = "other"
                return [{"content": self.buf}] if self.buf else []  # neither form: as it is
        if self.kind == "response":
            return self._answer()
        if self.kind == "call":
            return self._calls()
        return [{"content": text}] if text else []

    def _answer(self) -> List[Dict[str, Any]]:
        # From where the last piece ended to the string's closing quote, less an escape that is
        # not complete yet: each byte is read once, however long the answer.
        raw, start = self.buf, self.at
        i = start
        while i < len(raw) and raw[i] != '"':
            if raw[i] == "\\":
                step = 6 if raw[i + 1:i + 2] == "u" else 2
                if i + step > len(raw):
                    break
                i += step
            else:
                i += 1
        text = json.loads('"' + raw[start:i] + '"')
        if text and "\ud800" <= text[-1] <= "\udbff" and not (i < len(raw) and raw[i] == '"') and \
                raw[i - 6:i - 4] == "\\u":
            text, i = text[:-1], i - 6  # the first half of a surrogate pair (an escape): wait for the second
        self.at = i
        return [{"content": text}] if text else []

    def _calls(self) -> List[Dict[str, Any]]:
        out = []
        while True:
            if self.phase == "head":  # '{"name":' NAME ',"arguments":'
                head = '{"name":'
                if len(self.buf) < self.at + len(head) + 1:
                    return out
                try:
                    name, end = json.JSONDecoder().raw_decode(self.buf, self.at + len(head))
                except ValueError:
                    return out  # the name is not complete yet
                if not self.buf.startswith(',"arguments":', end):
                    return out
                out.append({"tool_calls": [{"index": self.calls, "id": f"call_{uuid.uuid4().hex[:24]}",
                                            "type": "function", "function": {"name": name, "arguments": ""}}]})
                self.calls += 1
                self.at = end + len(',"arguments":')
                self.phase, self.depth, self.in_str, self.esc, self.started = "args", 0, False, False, False
            elif self.phase == "args":
                start, i, done = self.at, self.at, False
                while i < len(self.buf) and not done:
                    ch = self.buf[i]
                    if self.in_str:
                        if self.esc:
                            self.esc = False
                        elif ch == "\\":
                            self.esc = True
                        elif ch == '"':
                            self.in_str = False
                    elif self.started and self.depth == 0 and ch in ",}]":
                        done = True  # a scalar's end: ch is not its own
                        break
                    elif ch == '"':
                        self.in_str = True
                    elif ch in "{[":
                        self.depth += 1
                    elif ch in "}]":
                        self.depth -= 1
                        done = self.depth == 0
                    self.started = True
                    i += 1
                if i > start:
                    out.append({"tool_calls": [{"index": self.calls - 1, "function": {"arguments": self.buf[start:i]}}]})
                self.at = i
                if not done:
                    return out
                self.phase = "after"
            else:  # after a call: '}' then ',' and the next call, or the end
                rest = self.buf[self.at:]
                if rest.startswith("},"):
                    self.at += 2
                    self.phase = "head"
                else:
                    return out

