"""One /v1/chat/completions request: its body checked and rendered into prompt ids, sampling
parameters and the jobs of its n choices (ChatCall), and the engine's deltas written back as chat
chunks or a whole chat.completion, with reasoning split off and tool calls read out. The chat
route and the Responses API (server_responses.py) both run their requests through it."""
from __future__ import annotations

import dataclasses
import time
import uuid
from typing import Any, Dict, List, Optional, Sequence

from . import chat_template, reasoning
from .server_logprobs import chat_logprobs
from .server_requests import (chat_render_options, chat_template_error, include_usage, params_for_choice,
                              sampling_params)
from .server_tools_hermes import history, tool_request


@dataclasses.dataclass
class ChoiceResult:
    """One choice's whole output, gathered from its deltas."""

    pieces: List[str] = dataclasses.field(default_factory=list)
    token_ids: List[int] = dataclasses.field(default_factory=list)
    logprobs: list = dataclasses.field(default_factory=list)
    finish_reason: Optional[str] = None
    stop_reason: Any = None

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    def add(self, d, logprobs) -> None:
        """Takes one engine delta (engine.StreamDelta) and the logprobs to keep of it."""
        self.pieces.append(d.text)
        self.token_ids += d.token_ids
        self.logprobs += logprobs
        if d.finished:
            self.finish_reason, self.stop_reason = d.finish_reason, d.stop_reason


def continuation(llm, ids: List[int]) -> List[int]:
    """ids (a rendered prompt) as the continuation of earlier tokens: without the BOS token that a
    model which adds one puts at the start of a text (it belongs only at the sequence's start)."""
    m = llm._core()
    return ids[1:] if ids and m.add_bos and m.bos_id >= 0 and ids[0] == m.bos_id else ids


def chat_prompt(llm, body: Dict[str, Any]):
    """(the messages as the template takes them, the render options for LLM.chat_prompt_ids, the
    request's tools or None) of a chat body: the tool forms' own history and template variables."""
    tools = tool_request(body, llm.chat_template)
    render = chat_render_options(body)
    if tools:
        render["chat_template_kwargs"] = tools.template_kwargs(render["chat_template_kwargs"])
    messages = (tools.messages if tools else lambda m: history(m, llm.chat_template))(body.get("messages"))
    if tools and tools.mode == "none":
        tools = None  # the reply is plain: no calls to read
    return messages, render, tools


class ChatCall:
    """Raises RequestError (a 4xx) for a body the route cannot answer; server is the Server whose
    model, limits and token pieces the request uses."""

    def __init__(self, server, body: Dict[str, Any], prefix_ids: Sequence[int] = ()):
        """prefix_ids: tokens the rendered conversation continues (Ollama's generate `context`)."""
        llm = server.llm
        self.model_id, self.pieces = server.model_id, server.pieces
        messages, render, tools = chat_prompt(llm, body)
        try:
            ids = llm.chat_prompt_ids(messages, **render)
        except chat_template.ChatTemplateError as e:
            raise chat_template_error(e) from None
        if prefix_ids:
            ids = list(prefix_ids) + continuation(llm, ids)
        params, n, stream, max_tokens = sampling_params(body, max_tokens_default=None, n_ctx=llm.n_ctx,
                                                        max_n=server.max_n, chat=True)
        if tools:
            params.json_schema = tools.compiled_schema()
        self.usage = include_usage(body, stream)
        self.jobs = []
        for c in range(n):
            p = params_for_choice(params, c)
            server._fit(p, max_tokens, ids)
            self.jobs.append((c, ids, p))
        # Held to JSON (tools, structured outputs) or a grammar, the reply has no reasoning to split
        # off; a free reply that may hold calls in the model's own syntax (Hermes "auto") does.
        self.think = (server.reasoning and params.json_schema is None and not params.json_object
                      and params.grammar is None)
        continued = body["messages"][-1].get("content") if render["continue_final_message"] else None
        self.opened = self.think and reasoning.open_at_start(llm.detokenize(ids[-64:], special=True),
                                                             continued if isinstance(continued, str) else None)
        self.ids, self.params, self.stream, self.tools = ids, params, stream, tools
        self.rid, self.created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        self.p_scored = None  # vLLM's prompt_logprobs, on the response (not per choice) in chat: set by the route
        self._started = set()
        self._streams: Dict[int, Any] = {}
        self._splitters: Dict[int, reasoning.ReasoningSplitter] = {}
        self._pending_lps: Dict[int, list] = {}

    def base(self) -> Dict[str, Any]:
        """The fields every streamed chunk starts with."""
        return {"id": self.rid, "object": "chat.completion.chunk", "created": self.created, "model": self.model_id}

    def _logprobs(self, entries):
        return None if self.params.logprobs is None else chat_logprobs(entries, self.pieces)

    def chunk(self, index: int, d) -> List[Dict[str, Any]]:
        """The chat chunks of one engine delta of choice `index`."""
        out = []
        base = self.base()
        if index not in self._started:
            self._started.add(index)
            out.append({**base, "choices": [{"index": index, "delta": {"role": "assistant", "content": ""},
                                             "logprobs": None, "finish_reason": None}]})
        reason = d.finish_reason
        text, deltas = d.text, []
        if self.think:  # reasoning_content until </think>, then content (or calls)
            sp = self._splitters.setdefault(index, reasoning.ReasoningSplitter(self.opened))
            r, text = sp.feed(d.text)
            if d.finished:
                r2, c2 = sp.finish()
                r, text = r + r2, text + c2
            deltas = [{"reasoning_content": r}] if r else []
        if self.tools:  # the reply as content or tool-call deltas
            ts = self._streams.setdefault(index, self.tools.stream())
            deltas += ts.feed(text, d.finished)
            if d.finished and reason == "stop" and ts.ended_in_call():
                reason = "tool_calls"  # (as the whole message says: not for a call a stop string cut)
        elif text:
            if deltas and "content" not in deltas[-1]:
                deltas[-1]["content"] = text
            else:
                deltas.append({"content": text})
        # Logprobs of tokens that gave no delta yet (the reply's JSON around an answer or call)
        # go with the next chunk.
        lp = self._pending_lps.setdefault(index, [])
        lp.extend(d.logprobs or [])
        if d.finished and not deltas:
            deltas = [{}]
        for k, delta in enumerate(deltas):
            last = k == len(deltas) - 1
            out.append({**base, "choices": [{"index": index, "delta": delta,
                                             "logprobs": self._logprobs(lp) if last else None,
                                             "finish_reason": reason if last else None,
                                             "stop_reason": d.stop_reason if last else None}]})
        if deltas:
            self._pending_lps[index] = []
        return out

    def _message(self, text: str, reason: Optional[str]):
        thought = None
        if self.think:
            thought, text, saw = reasoning.split(text, self.opened)
            thought = thought if saw else None
        msg, reason = (self.tools.message(text, reason) if self.tools
                       else ({"role": "assistant", "content": text}, reason))
        return {**msg, "reasoning_content": thought} if self.think else msg, reason

    def final(self, choices: List[ChoiceResult], usage: Dict[str, Any]) -> Dict[str, Any]:
        """The whole chat.completion from its choices' results."""
        replies = [self._message(c.text, c.finish_reason) for c in choices]
        return {"id": self.rid, "object": "chat.completion", "created": self.created, "model": self.model_id,
                "choices": [{"index": i, "message": replies[i][0], "logprobs": self._logprobs(c.logprobs),
                             "finish_reason": replies[i][1], "stop_reason": c.stop_reason}
                            for i, c in enumerate(choices)],
                "usage": usage,
                **({"prompt_logprobs": self.p_scored} if self.p_scored is not None else {})}
