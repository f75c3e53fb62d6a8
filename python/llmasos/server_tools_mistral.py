"""OpenAI function calling in Mistral's own form (Mistral 7B Instruct v0.3, Mixtral 8x22B Instruct,
Mistral Nemo and the templates that copy theirs), as vLLM's `mistral` tool parser reads it. The
template lists the request's tools in an [AVAILABLE_TOOLS] block, and a call is the whole reply,

    [TOOL_CALLS] [{"name": NAME, "arguments": {...}}, ...]

([TOOL_CALLS] is a control token, left out of the text unless rendered; a single object without
the list is read too). tool_choice "required" or a named function holds the reply to one such
object, its arguments valid under the tool's schema; "auto" reads a reply that is such JSON as
calls and anything else as the answer. Earlier calls go to the template as OpenAI messages with
the arguments as objects; Mistral's templates refuse a call id that is not 9 letters or digits,
so calls made here get such ids, and any other id in the history is replaced by one derived from
it (the same for a call and its result)."""
from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any, Dict, List, Optional

from .server_requests import parse_json
from .server_tools_hermes import HermesToolRequest
from .server_tools_llama3 import WholeReplyStream

TOOL_CALLS = "[TOOL_CALLS]"


def is_mistral_template(template: str) -> bool:
    """A template that lists tools and writes calls in Mistral's form itself."""
    return TOOL_CALLS in template and "[AVAILABLE_TOOLS]" in template


def call_id(given: Any = None) -> str:
    """A call id Mistral's templates take (9 letters or digits): `given` when it is one, else one
    derived from it (new when None)."""
    if isinstance(given, str) and len(given) == 9 and given.isascii() and given.isalnum():
        return given
    if given is None:
        return uuid.uuid4().hex[:9]
    return hashlib.sha1(str(given).encode()).hexdigest()[:9]


def read_calls(text: str) -> Optional[List[Dict[str, Any]]]:
    """The calls a whole reply makes (a JSON list of {"name", "arguments"} objects, or one such
    object, after [TOOL_CALLS] if the text shows it), as OpenAI tool calls; None when the reply
    is not only calls."""
    body = text.strip()
    if body.startswith(TOOL_CALLS):
        body = body[len(TOOL_CALLS):].strip()
    try:
        value = parse_json(body)  # the whole rest, its depth checked
    except (ValueError, RecursionError):
        return None
    items = value if isinstance(value, list) else [value]
    calls = []
    for obj in items:
        args = obj.get("arguments", obj.get("parameters", {})) if isinstance(obj, dict) else None
        if isinstance(args, str):  # arguments written as JSON text
            try:
                args = parse_json(args)
            except ValueError:
                return None
        if not isinstance(obj, dict) or not isinstance(obj.get("name"), str) or not isinstance(args, dict):
            return None
        calls.append({"id": call_id(), "type": "function",
                      "function": {"name": obj["name"], "arguments": json.dumps(args, ensure_ascii=False)}})
    return calls or None


class MistralToolRequest(HermesToolRequest):
    """The tools of one chat request whose template has Mistral's call form: the Hermes request's
    steps (tools to the template, history with arguments as objects, one forced call) with no
    markup around a forced call, ids the template takes, and its own reader."""

    wrap = None

    @staticmethod
    def messages(messages):
        """HermesToolRequest.messages, with every call id and tool_call_id as call_id makes it."""
        out = HermesToolRequest.messages(messages)
        if not isinstance(out, list):
            return out
        fixed = []
        for m in out:
            if isinstance(m, dict) and m.get("role") == "assistant" and m.get("tool_calls"):
                m = {**m, "tool_calls": [{**c, "id": call_id(c.get("id"))} for c in m["tool_calls"]]}
            elif isinstance(m, dict) and m.get("role") == "tool" and "tool_call_id" in m:
                m = {**m, "tool_call_id": call_id(m["tool_call_id"])}
            fixed.append(m)
        return fixed

    def stream(self) -> "MistralStream":
        return MistralStream(first_only=not self.parallel)


class MistralStream(WholeReplyStream):
    """A reply that opens with [TOOL_CALLS], "[" or "{" is read as calls (WholeReplyStream)."""

    def __init__(self, first_only: bool = False):
        super().__init__(first_only)

    @staticmethod
    def opens(head: str) -> Optional[bool]:
        if head[:1] in ("[", "{"):
            return True
        return False if head else None  # (whitespace so far)

    read = staticmethod(read_calls)
