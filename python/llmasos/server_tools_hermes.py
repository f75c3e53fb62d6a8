"""OpenAI function calling in a model's own tool syntax, for chat templates written for it: the
Hermes form (NousResearch Hermes 2 Pro / 3, Qwen 2.5 / 3, and the templates that copy them), as
vLLM's `hermes` tool parser and llama.cpp's server read it. The template itself describes the
tools to the model (the request's `tools` go to it as the `tools` variable, as Hugging Face
transformers passes them), and a call is written

    <tool_call>
    {"name": NAME, "arguments": {...}}
    </tool_call>

after any text of the reply. tool_choice "required" or a named function holds the reply to one
such call, its arguments valid under the tool's parameters (structured outputs around the
markup); "auto" lets the model write what it will and reads the calls out of it, as vLLM does.
Earlier calls and tool results go to the template as OpenAI messages (arguments as objects, as
transformers expects), which it writes in its own form."""
from __future__ import annotations

import json
import uuid
from typing import Any, Dict, List, Optional, Tuple

from .server_requests import RequestError, constraint_fields
from .server_tools import ToolRequest, _choice, _tools, call_schema

OPEN, CLOSE = "<tool_call>", "</tool_call>"


def is_hermes_template(template: str) -> bool:
    """A template that writes tools and calls in the Hermes form itself."""
    return OPEN in template and CLOSE in template and "tools" in template


def _read_call(block: str) -> Optional[Dict[str, Any]]:
    """A call's JSON (the text between the tags) as an OpenAI tool call, or None when it is not one."""
    try:
        call = json.loads(block)
    except ValueError:
        return None
    if not isinstance(call, dict) or not isinstance(call.get("name"), str):
        return None
    args = call.get("arguments", {})
    if isinstance(args, str):  # some models write the arguments as JSON text
        try:
            args = json.loads(args)
        except ValueError:
            return None
    if not isinstance(args, dict):
        return None
    return {"id": f"call_{uuid.uuid4().hex[:24]}", "type": "function",
            "function": {"name": call["name"], "arguments": json.dumps(args, ensure_ascii=False)}}


class HermesToolRequest:
    """The tools of one chat request whose template has the Hermes syntax (ToolRequest's interface)."""

    def __init__(self, body):
        self.tools = _tools(body)
        self.mode, self.only = _choice(body, self.tools)
        other = constraint_fields(body)
        if other:
            raise RequestError(f"'tools' together with '{other[0]}' is not supported", "tools")
        self.openai_tools = [{"type": "function", "function": {"name": t["name"], "description": t["description"],
                                                               "parameters": t["parameters"]}}
                             for t in self.tools if self.only is None or t["name"] == self.only]

    def messages(self, messages):
        """The messages as transformers gives them to a template: a call's arguments as an object."""
        if not isinstance(messages, list):
            return messages
        out = []
        for m in messages:
            calls = m.get("tool_calls") if isinstance(m, dict) else None
            if m.get("role") == "assistant" and isinstance(calls, list) and calls:
                fixed = []
                for c in calls:
                    f = c.get("function") if isinstance(c, dict) else None
                    if not isinstance(f, dict) or not isinstance(f.get("name"), str):
                        raise RequestError("an assistant message's tool_calls must be a list of {'id': ..., "
                                           "'function': {'name': ..., 'arguments': JSON text}}", "messages")
                    args = f.get("arguments") or "{}"
                    try:
                        args = json.loads(args) if isinstance(args, str) else args
                    except ValueError:
                        raise RequestError(f"tool call {f['name']!r}: 'arguments' is not JSON", "messages") from None
                    fixed.append({**c, "function": {**f, "arguments": args}})
                m = {**m, "tool_calls": fixed, "content": m.get("content") or ""}
            out.append(m)
        return out

    def template_kwargs(self, given: Optional[dict]) -> dict:
        return {**(given or {}), "tools": self.openai_tools}

    def compiled_schema(self):
        """The constraint: one call for "required" or a named function; none for "auto"."""
        if self.mode == "auto":
            return None
        try:
            from .json_schema import compile_schema
            one, defs = call_schema(self.tools, self.only)
            return compile_schema({**one, **defs}, False, wrap=(OPEN + "\n", "\n" + CLOSE))
        except ValueError as e:
            raise RequestError(str(e), "tools") from None

    @staticmethod
    def message(text: str, finish_reason: Optional[str]) -> Tuple[Dict[str, Any], Optional[str]]:
        """(the assistant message, finish_reason) for a whole reply."""
        s = HermesStream()
        deltas = s.feed(text, True)
        content = "".join(d.get("content", "") for d in deltas)
        calls = [tc for d in deltas for tc in d.get("tool_calls", [])]
        if not calls:
            return {"role": "assistant", "content": content}, finish_reason
        calls = [{"id": c["id"], "type": "function", "function": c["function"]} for c in calls]
        return ({"role": "assistant", "content": content.strip() or None, "tool_calls": calls},
                "tool_calls" if finish_reason == "stop" else finish_reason)

    @staticmethod
    def stream():
        return HermesStream()


class HermesStream:
    """One choice's reply as OpenAI deltas: its text as content while it comes (holding back what
    could be the start of <tool_call>), each call as one tool-call delta once its </tool_call>
    comes (a block that is not a call goes out as the text it is). After the first call, text
    that is only whitespace between calls is dropped."""

    def __init__(self):
        self.buf = ""
        self.calls = 0
        self.in_call = False

    def ended_in_call(self) -> bool:
        """The reply made a call (and is not inside an unfinished one)."""
        return self.calls > 0 and not self.in_call

    def feed(self, text: str, finished: bool) -> List[Dict[str, Any]]:
        self.buf += text
        out: List[Dict[str, Any]] = []
        while True:
            if self.in_call:
                end = self.buf.find(CLOSE)
                if end < 0:
                    if finished:  # cut short (max_tokens, a stop): a whole call still counts, else text
                        cut = max((k for k in range(1, len(CLOSE)) if self.buf.endswith(CLOSE[:k])), default=0)
                        call = _read_call(self.buf[:len(self.buf) - cut].strip())
                        out += self._call(call) if call else self._text(OPEN + self.buf)
                        self.buf, self.in_call = "", False
                    return out
                block, self.buf = self.buf[:end], self.buf[end + len(CLOSE):]
                self.in_call = False
                call = _read_call(block.strip())
                out += self._call(call) if call else self._text(OPEN + block + CLOSE)
                continue
            at = self.buf.find(OPEN)
            if at >= 0:
                out += self._text(self.buf[:at])
                self.buf, self.in_call = self.buf[at + len(OPEN):], True
                continue
            hold = 0 if finished else max((k for k in range(1, len(OPEN)) if self.buf.endswith(OPEN[:k])), default=0)
            cut = len(self.buf) - hold
            if self.calls and not finished and not self.buf[:cut].strip():
                return out  # whitespace after a call: held until something else comes
            out += self._text(self.buf[:cut])
            self.buf = self.buf[cut:]
            return out

    def _text(self, text: str) -> List[Dict[str, Any]]:
        if self.calls and not text.strip():
            return []
        return [{"content": text}] if text else []

    def _call(self, call: Dict[str, Any]) -> List[Dict[str, Any]]:
        self.calls += 1
        return [{"tool_calls": [{"index": self.calls - 1, **call}]}]


def tool_request(body, template: str):
    """The request's tools in the template's own syntax when it has one, else the generic form."""
    return HermesToolRequest(body) if is_hermes_template(template) else ToolRequest(body)
