"""OpenAI function calling in Llama 3.1 / 3.2 / 3.3's own JSON form, for chat templates written for
it (Meta's, which tell the model to 'Respond in the format {"name": function name, "parameters":
dictionary of argument name and its value}'), as vLLM's `llama3_json` tool parser and llama.cpp's
server read it. The request's tools go to the template as its `tools` variable, and a call is the
whole reply,

    {"name": NAME, "parameters": {...}}

(after a <|python_tag|> if the model writes one; several separated by ";"). tool_choice
"required" or a named function holds the reply to one such object, its parameters valid under the
tool's schema; "auto" reads a reply that is such JSON as calls and anything else as the answer.
Earlier calls go to the template as OpenAI messages with the arguments as objects and tool results
as "tool" messages, which Meta's template writes as its ipython turns. Its template writes one call
per turn, so parallel_tool_calls defaults to false here."""
from __future__ import annotations

import json
import uuid
from typing import Any, Dict, List, Optional

from .server_requests import parse_json
from .server_tools_hermes import HermesToolRequest

PYTHON_TAG = "<|python_tag|>"


def is_llama3_template(template: str) -> bool:
    """A template that asks for calls in Llama 3's JSON form itself."""
    return "tools" in template and ('"parameters": dictionary of argument name' in template or PYTHON_TAG in template)


def read_calls(text: str) -> Optional[List[Dict[str, Any]]]:
    """The calls a whole reply makes ({"name", "parameters" or "arguments"} objects, ";" between
    them), as OpenAI tool calls; None when the reply is not only calls."""
    body = text.strip()
    if body.startswith(PYTHON_TAG):
        body = body[len(PYTHON_TAG):].lstrip()
    dec, calls, at = json.JSONDecoder(), [], 0
    while at < len(body):
        try:
            obj, end = dec.raw_decode(body, at)
            parse_json(body[at:end])  # (its depth checked)
        except (ValueError, RecursionError):
            return None
        args = obj.get("parameters", obj.get("arguments", {})) if isinstance(obj, dict) else None
        if not isinstance(obj, dict) or not isinstance(obj.get("name"), str) or not isinstance(args, dict):
            return None
        calls.append({"id": f"call_{uuid.uuid4().hex[:24]}", "type": "function",
                      "function": {"name": obj["name"], "arguments": json.dumps(args, ensure_ascii=False)}})
        at = end
        while at < len(body) and (body[at].isspace() or body[at] == ";"):
            at += 1
    return calls or None


class Llama3ToolRequest(HermesToolRequest):
    """The tools of one chat request whose template has Llama 3's JSON call form: the Hermes
    request's steps (tools to the template, history with arguments as objects, one forced call)
    with "parameters", no markup around a call, one call a turn by default, and its own reader."""

    parallel_default = False  # (Meta's template writes one call a turn)
    args_key = "parameters"
    wrap = None

    def stream(self) -> "Llama3Stream":
        return Llama3Stream(first_only=not self.parallel)


class WholeReplyStream:
    """One choice's reply as OpenAI deltas, for the JSON call forms whose calls are the whole reply
    (Llama 3's here, Mistral's in server_tools_mistral.py), the same whatever pieces it comes in:
    a reply that opens as calls (opens(), on its first visible characters) is held to its end and
    read as calls (read(), None when it is not only calls: then it is given as content); any
    other reply is content as it comes. first_only (parallel_tool_calls false) keeps the first
    call."""

    def __init__(self, first_only: bool):
        self.first_only = first_only
        self.buf = ""
        self.held: Optional[bool] = None  # undecided until the reply's first visible characters
        self.calls = 0

    @staticmethod
    def opens(head: str) -> Optional[bool]:
        """Whether a reply starting with `head` (stripped) is read as calls; None: cannot tell yet."""
        raise NotImplementedError

    @staticmethod
    def read(text: str) -> Optional[List[Dict[str, Any]]]:
        raise NotImplementedError

    def ended_in_call(self) -> bool:
        return self.calls > 0

    def feed(self, text: str, finished: bool) -> List[Dict[str, Any]]:
        self.buf += text
        if self.held is None:
            self.held = self.opens(self.buf.lstrip())
            if self.held is None and not finished:
                return []
        if not self.held:
            out, self.buf = self.buf, ""
            return [{"content": out}] if out else []
        if not finished:
            return []
        text, self.buf = self.buf, ""
        calls = self.read(text)
        if not calls:
            return [{"content": text}] if text else []
        self.calls = len(calls)
        kept = calls[:1] if self.first_only else calls
        return [{"tool_calls": [{"index": i, **c}]} for i, c in enumerate(kept)]


class Llama3Stream(WholeReplyStream):
    """A reply that opens with "{" or <|python_tag|> is read as calls (WholeReplyStream)."""

    def __init__(self, first_only: bool = True):
        super().__init__(first_only)

    @staticmethod
    def opens(head: str) -> Optional[bool]:
        if head.startswith("{") or head.startswith(PYTHON_TAG):
            return True
        if head and not PYTHON_TAG.startswith(head[:len(PYTHON_TAG)]):
            return False
        return None  # whitespace, or what may be the start of <|python_tag|>

    read = staticmethod(read_calls)
