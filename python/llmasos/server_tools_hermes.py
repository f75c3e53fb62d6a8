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

from .server_requests import RequestError, parse_json
from .server_tools import ToolRequest, _history as history_generic, call_schema, request_head

OPEN, CLOSE = "<tool_call>", "</tool_call>"


def is_hermes_template(template: str) -> bool:
    """A template that writes tools and calls in the Hermes form itself."""
    return OPEN in template and CLOSE in template and "tools" in template


def _read_call(block: str) -> Optional[Dict[str, Any]]:
    """A call's JSON (the text between the tags) as an OpenAI tool call, or None when it is not one."""
    try:
        call = parse_json(block)
    except ValueError:
        return None
    if not isinstance(call, dict) or not isinstance(call.get("name"), str):
        return None
    args = call.get("arguments", {})
    if isinstance(args, str):  # some models write the arguments as JSON text
        try:
            args = parse_json(args)
        except ValueError:
            return None
    if not isinstance(args, dict):
        return None
    return {"id": f"call_{uuid.uuid4().hex[:24]}", "type": "function",
            "function": {"name": call["name"], "arguments": json.dumps(args, ensure_ascii=False)}}


class HermesToolRequest:
    """The tools of one chat request whose template has the Hermes syntax (ToolRequest's interface).
    The other native forms (server_tools_llama3.py) differ only in the class attributes below and
    their stream."""

    parallel_default = True  # OpenAI's
    args_key = "arguments"   # a call's {"name": ..., args_key: {...}}
    wrap: Optional[Tuple[str, str]] = (OPEN + "\n", "\n" + CLOSE)  # around a forced call

    def __init__(self, body):
        self.tools, self.mode, self.only, self.parallel = request_head(body, self.parallel_default)
        self.openai_tools = [{"type": "function", "function": {"name": t["name"], "description": t["description"],
                                                               "parameters": t["parameters"]}}
                             for t in self.tools if self.only is None or t["name"] == self.only]

    @staticmethod
    def messages(messages):
        """The messages as transformers gives them to a template: a call's arguments as an object."""
        if not isinstance(messages, list):
            return messages
        out = []
        for m in messages:
            calls = m.get("tool_calls") if isinstance(m, dict) else None
            if isinstance(m, dict) and m.get("role") == "assistant" and isinstance(calls, list) and calls:
                fixed = []
                for c in calls:
                    f = c.get("function") if isinstance(c, dict) else None
                    if not isinstance(f, dict) or not isinstance(f.get("name"), str):
                        raise RequestError("an assistant message's tool_calls must be a list of {'id': ..., "
                                           "'function': {'name': ..., 'arguments': JSON text}}", "messages")
                    args = f.get("arguments") or "{}"
                    try:
                        args = parse_json(args) if isinstance(args, str) else args
                    except ValueError:
                        raise RequestError(f"tool call {f['name']!r}: 'arguments' is not JSON", "messages") from None
                    fixed.append({**c, "function": {**f, "arguments": args}})
                m = {**m, "tool_calls": fixed, "content": m.get("content") or ""}
            out.append(m)
        return out

    def template_kwargs(self, given: Optional[dict]) -> dict:
        # With tool_choice "none" too, as vLLM: the model still knows the tools it may not call.
        return {**(given or {}), "tools": self.openai_tools}

    def compiled_schema(self):
        """The constraint: one call for "required" or a named function; none for "auto" / "none"."""
        if self.mode in ("auto", "none"):
            return None
        try:
            from .json_schema import compile_schema
            one, defs = call_schema(self.tools, self.only, self.args_key)
            return compile_schema({**one, **defs}, False, wrap=self.wrap)
        except ValueError as e:
            raise RequestError(str(e), "tools") from None

    def stream(self) -> "HermesStream":
        return HermesStream(forced=self.mode == "required", first_only=not self.parallel)

    def message(self, text: str, finish_reason: Optional[str]) -> Tuple[Dict[str, Any], Optional[str]]:
        """(the assistant message, finish_reason) for a whole reply: what the stream gives."""
        deltas = self.stream().feed(text, True)
        content = "".join(d.get("content", "") for d in deltas)
        calls = [tc for d in deltas for tc in d.get("tool_calls", [])]
        if not calls:
            return {"role": "assistant", "content": content}, finish_reason
        calls = [{"id": c["id"], "type": "function", "function": c["function"]} for c in calls]
        return ({"role": "assistant", "content": content or None, "tool_calls": calls},
                "tool_calls" if finish_reason == "stop" else finish_reason)


class HermesStream:
    """One choice's reply as OpenAI deltas, the same whatever pieces it comes in: its text as
    content while it comes (holding back what could be the start of <tool_call>), each call as one
    tool-call delta once its </tool_call> comes (a block that is not a call stays text).
    Whitespace next to a call is dropped (held until text or a call shows which it is); forced
    (tool_choice required / named: the reply is one wrapped call, whose strings may hold
    "</tool_call>") reads the reply whole at its end; first_only (parallel_tool_calls false)
    keeps the first call."""

    def __init__(self, forced: bool = False, first_only: bool = False):
        self.forced, self.first_only = forced, first_only
        self.buf = ""       # text not yet read
        self.pending = ""   # whitespace held back
        self.calls = 0
        self.in_call = False

    def ended_in_call(self) -> bool:
        """The reply made a call (and is not inside an unfinished one)."""
        return self.calls > 0 and not self.in_call

    def feed(self, text: str, finished: bool) -> List[Dict[str, Any]]:
        self.buf += text
        if self.forced:
            return self._whole() if finished else []
        out: List[Dict[str, Any]] = []
        while True:
            if self.in_call:
                end = self.buf.find(CLOSE)
                if end < 0:
                    if finished:  # cut short (max_tokens, a stop): a whole call still counts, else text
                        cut = max((k for k in range(1, len(CLOSE)) if self.buf.endswith(CLOSE[:k])), default=0)
                        out += self._block(self.buf[:len(self.buf) - cut], OPEN + self.buf)
                        self.buf, self.in_call = "", False
                        break
                    return out
                block, self.buf = self.buf[:end], self.buf[end + len(CLOSE):]
                self.in_call = False
                out += self._block(block, OPEN + block + CLOSE)
                continue
            at = self.buf.find(OPEN)
            if at >= 0:
                out += self._text(self.buf[:at])
                self.buf, self.in_call = self.buf[at + len(OPEN):], True
                continue
            hold = 0 if finished else max((k for k in range(1, len(OPEN)) if self.buf.endswith(OPEN[:k])), default=0)
            out += self._text(self.buf[:len(self.buf) - hold])
            self.buf = self.buf[len(self.buf) - hold:]
            break
        if finished:
            if not self.calls and self.pending:
                out.append({"content": self.pending})
            self.pending = ""
        return out

    def _whole(self) -> List[Dict[str, Any]]:
        """A forced reply: the call between its first <tool_call> and its last </tool_call>."""
        text, self.buf = self.buf, ""
        start, end = text.find(OPEN), text.rfind(CLOSE)
        if start >= 0 and end > start and not text[:start].strip() and not text[end + len(CLOSE):].strip():
            call = _read_call(text[start + len(OPEN):end].strip())
            if call:
                return self._call(call)
        if start >= 0 and end < start:  # cut short: a whole call still counts
            cut = max((k for k in range(1, len(CLOSE)) if text.endswith(CLOSE[:k])), default=0)
            call = _read_call(text[start + len(OPEN):len(text) - cut].strip())
            if call:
                return self._call(call)
        return [{"content": text}] if text else []

    def _block(self, block: str, raw: str) -> List[Dict[str, Any]]:
        call = _read_call(block.strip())
        return self._call(call) if call else self._text(raw)

    def _text(self, text: str) -> List[Dict[str, Any]]:
        """Text outside calls: out with the whitespace held before it; its own trailing
        whitespace held."""
        body = text.rstrip()
        if not body:
            self.pending += text
            return []
        out, self.pending = self.pending + body, text[len(body):]
        return [{"content": out}]

    def _call(self, call: Dict[str, Any]) -> List[Dict[str, Any]]:
        self.pending = ""  # whitespace next to a call
        self.calls += 1
        if self.first_only and self.calls > 1:
            return []
        return [{"tool_calls": [{"index": self.calls - 1, **call}]}]


def tool_request(body, template: str):
    """The request's tools in the template's own syntax when it has one (Hermes, Llama 3's JSON,
    Mistral's), else the generic form; None without tools (tool_choice then must be absent or
    "none", as vLLM asks)."""
    from .server_tools_llama3 import Llama3ToolRequest, is_llama3_template
    from .server_tools_mistral import MistralToolRequest, is_mistral_template
    if body.get("tools") is None:
        if body.get("tool_choice") not in (None, "none"):
            raise RequestError("'tool_choice' needs 'tools'", "tool_choice")
        return None
    if is_hermes_template(template):
        return HermesToolRequest(body)
    if is_mistral_template(template):
        return MistralToolRequest(body)
    return Llama3ToolRequest(body) if is_llama3_template(template) else ToolRequest(body)


def history(messages, template: str):
    """Without tools in the request: earlier calls and results as the template's form takes them
    (a native form's template: OpenAI messages with the arguments as objects)."""
    from .server_tools_llama3 import is_llama3_template
    from .server_tools_mistral import MistralToolRequest, is_mistral_template
    if is_mistral_template(template):
        return MistralToolRequest.messages(messages)
    if is_hermes_template(template) or is_llama3_template(template):
        return HermesToolRequest.messages(messages)
    return history_generic(messages, False)
