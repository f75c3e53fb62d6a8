"""OpenAI function calling ("tools" on /v1/chat/completions) for a model of any chat template, in
the generic form llama.cpp's server uses for templates without a tool syntax of their own: the
tools are described to the model in the system message, and its reply is held by structured
outputs to one JSON object,

    {"tool_call": {"name": NAME, "arguments": {...}}}   a call, its arguments valid under the
                                                         tool's "parameters" schema, or
    {"response": "..."}                                  a plain answer (tool_choice "auto").

tool_choice "auto" (the default with tools) allows both, "required" and a named function only the
call, "none" neither (the request runs as a plain chat). One call per reply. Earlier turns go back
to the model in the same form: an assistant turn's tool_calls as its JSON, a "tool" message as a
user turn that names the call it answers.
"""
from __future__ import annotations

import json
import uuid
from typing import Any, Dict, List, Optional, Tuple

from .server_requests import RequestError

CALL_PREFIX = '{"tool_call":{"name":'
RESPONSE_PREFIX = '{"response":"'


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


def reply_schema(tools, mode: str, only: Optional[str]) -> Dict[str, Any]:
    # Each tool's parameters sit under the reply's root, so their $defs (Pydantic's) move up to it.
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
        calls.append({"type": "object", "additionalProperties": False, "required": ["name", "arguments"],
                      "properties": {"name": {"const": t["name"]}, "arguments": params}})
    call = {"type": "object", "additionalProperties": False, "required": ["tool_call"],
            "properties": {"tool_call": calls[0] if len(calls) == 1 else {"anyOf": calls}}}
    answer = {"type": "object", "additionalProperties": False, "required": ["response"],
              "properties": {"response": {"type": "string"}}}
    root = call if mode == "required" else {"anyOf": [call, answer]}
    return {**root, **{k: v for k, v in defs.items() if v}}


def _system_text(tools, mode: str, only: Optional[str]) -> str:
    listed = "\n".join(json.dumps(t, ensure_ascii=False) for t in tools if only is None or t["name"] == only)
    how = ('To call a tool, reply with {"tool_call": {"name": <tool name>, "arguments": <its arguments>}}.')
    if mode == "auto":
        how += ' To answer without a tool, reply with {"response": <your answer>}.'
    return f"You can call these tools:\n{listed}\n{how}"


def _history(messages) -> List[Dict[str, Any]]:
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
                    args = json.loads(f.get("arguments") or "{}")
                except (AttributeError, TypeError, ValueError):
                    raise RequestError("an assistant message's tool_calls must be a list of {'id': ..., 'function': "
                                       "{'name': ..., 'arguments': JSON text}}", "messages") from None
                names[c.get("id")] = f.get("name")
                parts.append(json.dumps({"tool_call": {"name": f.get("name"), "arguments": args}}, ensure_ascii=False))
            out.append({"role": "assistant", "content": "\n".join(parts)})
        elif m.get("role") == "tool":
            name = names.get(m.get("tool_call_id")) or m.get("name") or "the tool"
            content = m.get("content")
            out.append({"role": "user", "content": [{"type": "text", "text": f"Result of {name}:"}]
                        + (content if isinstance(content, list) else [{"type": "text", "text": content}])})
        else:
            out.append(m)
    return out


def _complete(text: str) -> bool:
    try:
        json.loads(text)
        return True
    except ValueError:
        return False


class ToolRequest:
    """The tools of one chat request: its messages for the template, the reply schema, and the
    reply turned back into OpenAI's message (tool_calls or content), whole or streamed."""

    def __init__(self, body):
        self.tools = _tools(body)
        self.mode, self.only = _choice(body, self.tools)
        text = isinstance(body.get("response_format"), dict) and body["response_format"].get("type") == "text"
        other = [k for k in ("response_format", "json_schema", "guided_json", "guided_regex", "guided_choice")
                 if body.get(k) is not None and not (k == "response_format" and text)]  # "text": no constraint
        if other:
            raise RequestError(f"'tools' together with '{other[0]}' is not supported", "tools")
        self.schema = reply_schema(self.tools, self.mode, self.only)

    def messages(self, messages):
        msgs = _history(messages)
        if not isinstance(msgs, list) or not msgs:
            return msgs
        text = _system_text(self.tools, self.mode, self.only)
        first = msgs[0]
        if isinstance(first, dict) and first.get("role") == "system" and isinstance(first.get("content"), str):
            return [{**first, "content": first["content"] + "\n\n" + text}] + msgs[1:]
        return [{"role": "system", "content": text}] + msgs

    @staticmethod
    def message(text: str, finish_reason: Optional[str]) -> Tuple[Dict[str, Any], Optional[str]]:
        """(the assistant message, finish_reason) for a whole reply."""
        try:
            reply = json.loads(text)
        except ValueError:  # cut short by max_tokens: what there is, read as the stream reads it
            ts = ToolStream()
            deltas = ts.feed(text, True)
            if ts.kind == "call" and deltas:
                head = deltas[0]["tool_calls"][0]
                head["function"]["arguments"] = "".join(d["tool_calls"][0]["function"]["arguments"] for d in deltas[1:])
                del head["index"]
                return {"role": "assistant", "content": None, "tool_calls": [head]}, finish_reason
            return {"role": "assistant", "content": "".join(d.get("content", "") for d in deltas)}, finish_reason
        if "tool_call" in reply:  # the arguments as the model wrote them, as the stream gives them
            args = text[text.index('","arguments":', len(CALL_PREFIX)) + len('","arguments":'):-2]
            return {"role": "assistant", "content": None, "tool_calls": [{
                "id": f"call_{uuid.uuid4().hex[:24]}", "type": "function",
                "function": {"name": reply["tool_call"]["name"], "arguments": args}}]}, "tool_calls"
        return {"role": "assistant", "content": reply["response"]}, finish_reason


class ToolStream:
    """One choice's streamed reply as OpenAI deltas: the answer's text as content while it comes,
    or a tool call (its id and name, then its arguments' text as it comes)."""

    def __init__(self):
        self.buf = ""
        self.at = len(RESPONSE_PREFIX)  # an answer: where its unread text starts in buf
        self.sent = 0           # a call: characters of the arguments sent
        self.call_at = None     # where the arguments start in buf, once the name is known
        self.kind = None        # "call" or "response"

    def feed(self, text: str, finished: bool) -> List[Dict[str, Any]]:
        self.buf += text
        if self.kind is None:
            if self.buf.startswith(CALL_PREFIX):
                self.kind = "call"
            elif self.buf.startswith(RESPONSE_PREFIX):
                self.kind = "response"
            elif not finished:
                return []
        if self.kind == "response":
            return self._answer(finished)
        if self.kind == "call":
            return self._call(finished)
        return [{"content": self.buf}] if self.buf else []  # cut short before either form showed

    def _answer(self, finished) -> List[Dict[str, Any]]:
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
        if text and "\ud800" <= text[-1] <= "\udbff" and not (i < len(raw) and raw[i] == '"'):
            text, i = text[:-1], i - 6  # the first half of a surrogate pair (an escape): wait for the second
        self.at = i
        return [{"content": text}] if text else []

    def _call(self, finished) -> List[Dict[str, Any]]:
        out = []
        if self.call_at is None:
            # '{"tool_call":{"name":"NAME","arguments":': the name is a JSON string
            at = self.buf.find('","arguments":', len(CALL_PREFIX))
            if at < 0:
                return []
            name = json.loads(self.buf[len(CALL_PREFIX):at + 1])
            self.call_at = at + len('","arguments":')
            out.append({"tool_calls": [{"index": 0, "id": f"call_{uuid.uuid4().hex[:24]}", "type": "function",
                                        "function": {"name": name, "arguments": ""}}]})
        args = self.buf[self.call_at:]
        if not finished:
            args = args[:max(len(args) - 2, 0)]  # the last two may be the wrapper's '}}'
        elif _complete(self.buf):
            args = args[:-2]
        new, self.sent = args[self.sent:], len(args)
        if new:
            out.append({"tool_calls": [{"index": 0, "function": {"arguments": new}}]})
        return out
