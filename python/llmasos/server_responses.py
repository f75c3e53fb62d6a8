"""OpenAI's Responses API, as vLLM serves it: POST /v1/responses, GET and DELETE
/v1/responses/{id}, GET /v1/responses/{id}/input_items, POST /v1/responses/{id}/cancel. A request
is translated into a chat request (instructions and input items into messages, function tools,
text.format into response_format, max_output_tokens) and run as one (server_chat.ChatCall); its
reply comes back as output items (reasoning, message, function_call), whole or as the typed events
that the openai client's responses.stream() accumulates. Responses are stored in memory (store,
the default; the latest MAX_STORED) for previous_response_id, which continues from a stored
response's input and output, and retrieval. A background one is answered queued at once and run
on the server; GET shows it in_progress, then whole; cancel stops it."""
from __future__ import annotations

import asyncio
import collections
import json
import logging
import time
import uuid
from typing import Any, AsyncIterator, Dict, Iterator, List, Optional

from starlette.responses import JSONResponse, Response, StreamingResponse

from .engine import StreamDelta
from .server_chat import ChatCall
from .server_requests import RequestError
from .server_responses_request import ResponsesRequest, input_items

logger = logging.getLogger("llmasos.server")

MAX_STORED = 256


def _new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def usage(chat_usage: Dict[str, Any], output: List[Dict[str, Any]], llm, block_tokens: int) -> Dict[str, Any]:
    """A chat usage in the Responses API's words. cache_write_tokens: the prompt's tokens in whole
    blocks this request computed, which the prefix cache keeps from then on; reasoning_tokens:
    the reasoning items' text as the model's tokenizer writes it."""
    thought = sum(len(llm.tokenize(part["text"], add_bos=False)) for item in output if item["type"] == "reasoning"
                  for part in item["content"])
    n, cached = chat_usage["prompt_tokens"], chat_usage["prompt_tokens_details"]["cached_tokens"]
    return {"input_tokens": n, "input_tokens_details": {
                "cached_tokens": cached, "cache_write_tokens": max(n // block_tokens * block_tokens - cached, 0)},
            "output_tokens": chat_usage["completion_tokens"], "output_tokens_details": {"reasoning_tokens": thought},
            "total_tokens": chat_usage["total_tokens"]}


class Stored:
    """A stored response, the messages a later previous_response_id continues from, and its input
    items as given."""

    def __init__(self, response: Dict[str, Any], messages: List[Dict[str, Any]], inputs: List[Dict[str, Any]]):
        self.response, self.messages, self.inputs = response, messages, inputs


class ResponseStore:
    """The latest MAX_STORED responses, by id (an in-memory store, as vLLM keeps)."""

    def __init__(self, limit: int = MAX_STORED):
        self.limit, self._items = limit, collections.OrderedDict()

    def get(self, rid: str) -> Optional[Stored]:
        return self._items.get(rid)

    def put(self, rid: str, item: Stored) -> None:
        self._items[rid] = item
        while len(self._items) > self.limit:
            self._items.popitem(last=False)

    def delete(self, rid: str) -> bool:
        return self._items.pop(rid, None) is not None


class EventWriter:
    """The chat chunks of one streamed reply as Responses events: each output item is added,
    filled by deltas and done in turn (reasoning, then the message, then each function call)."""

    def __init__(self, request: ResponsesRequest, rid: str, created: float, model: str):
        self.req, self.rid, self.created, self.model = request, rid, created, model
        self.seq = 0
        self.done: List[Dict[str, Any]] = []  # finished output items
        self.open: Optional[Dict[str, Any]] = None  # the item being written
        self.calls: Dict[int, Dict[str, Any]] = {}  # chat tool-call index -> its function_call item
        self.pending: List[Dict[str, Any]] = []  # logprobs not yet sent

    def _event(self, kind: str, **fields) -> str:
        ev = {"type": kind, "sequence_number": self.seq, **fields}
        self.seq += 1
        return f"event: {kind}\ndata: {json.dumps(ev)}\n\n"

    def start(self) -> Iterator[str]:
        r = self.req.response(self.rid, self.created, self.model, [], "in_progress")
        yield self._event("response.created", response=r)
        yield self._event("response.in_progress", response=r)

    def _add(self, item: Dict[str, Any]) -> Iterator[str]:
        yield from self._close()
        self.open = item
        shown = {**item, "content": []} if item["type"] in ("message", "reasoning") else item
        yield self._event("response.output_item.added", output_index=len(self.done), item=shown)
        if item["type"] == "message":
            yield self._event("response.content_part.added", item_id=item["id"], output_index=len(self.done),
                              content_index=0, part={**item["content"][0], "text": "", "logprobs": []})

    def _close(self, status: str = "completed") -> Iterator[str]:
        item, self.open = self.open, None
        if item is None:
            return
        item["status"] = status if item["type"] != "function_call" else "completed"
        at = dict(item_id=item["id"], output_index=len(self.done))
        if item["type"] == "message":
            part = item["content"][0]
            yield self._event("response.output_text.done", **at, content_index=0, text=part["text"],
                              logprobs=part["logprobs"])
            yield self._event("response.content_part.done", **at, content_index=0, part=part)
        elif item["type"] == "reasoning":
            yield self._event("response.reasoning_text.done", **at, content_index=0,
                              text=item["content"][0]["text"])
        else:
            yield self._event("response.function_call_arguments.done", **at, name=item["name"],
                              arguments=item["arguments"])
        yield self._event("response.output_item.done", output_index=len(self.done), item=item)
        self.done.append(item)

    def _message(self) -> Iterator[str]:
        yield from self._add({"type": "message", "id": _new_id("msg"), "role": "assistant", "status": "in_progress",
                              "content": [{"type": "output_text", "text": "", "annotations": [], "logprobs": []}]})

    def feed(self, chunk: Dict[str, Any]) -> Iterator[str]:
        """The events of one chat chunk (choice 0). Logprobs wait for the next text delta, so the
        message's logprobs are every reply token's, as in the whole response."""
        choice = chunk["choices"][0]
        delta = choice["delta"]
        self.pending += (choice.get("logprobs") or {}).get("content") or []
        if delta.get("reasoning_content"):
            if self.open is None or self.open["type"] != "reasoning":
                yield from self._add({"type": "reasoning", "id": _new_id("rs"), "summary": [],
                                      "status": "in_progress", "content": [{"type": "reasoning_text", "text": ""}]})
            self.open["content"][0]["text"] += delta["reasoning_content"]
            yield self._event("response.reasoning_text.delta", item_id=self.open["id"], output_index=len(self.done),
                              content_index=0, delta=delta["reasoning_content"])
        if delta.get("content"):
            if self.open is None or self.open["type"] != "message":
                yield from self._message()
            yield from self._text(delta["content"])
        for tc in delta.get("tool_calls") or []:
            fn = tc.get("function") or {}
            if tc["index"] not in self.calls:
                item = {"type": "function_call", "id": _new_id("fc"), "call_id": tc.get("id"),
                        "name": fn.get("name"), "arguments": "", "status": "in_progress"}
                self.calls[tc["index"]] = item
                yield from self._add(item)
            item = self.calls[tc["index"]]
            if fn.get("arguments"):
                item["arguments"] += fn["arguments"]
                yield self._event("response.function_call_arguments.delta", item_id=item["id"],
                                  output_index=len(self.done), delta=fn["arguments"])

    def _text(self, text: str) -> Iterator[str]:
        part = self.open["content"][0]
        lps, self.pending = self.pending, []
        part["text"] += text
        part["logprobs"] += lps
        yield self._event("response.output_text.delta", item_id=self.open["id"], output_index=len(self.done),
                          content_index=0, delta=text, logprobs=lps)

    def error(self, exc: BaseException) -> str:
        return self._event("error", message=f"internal server error ({type(exc).__name__})", code="internal_error",
                           param=None)

    def finish(self, finish_reason: Optional[str], usage_of) -> Iterator[str]:
        """Closes the open item and completes the response; usage_of(output items) gives its usage."""
        status = "incomplete" if finish_reason == "length" else "completed"
        # A reply without calls has one message, empty if it said nothing; reasoning cut short
        # before it is incomplete too.
        if not self.calls and not any(it["type"] == "message" for it in self.done + [self.open] if it):
            yield from self._close(status)
            yield from self._message()
        if self.pending and self.open is not None and self.open["type"] == "message":
            yield from self._text("")
        yield from self._close(status)
        r = self.req.response(self.rid, self.created, self.model, self.done, status, usage_of(self.done))
        yield self._event(f"response.{status}", response=r)
        self.final = r


def _chat_call(server, req: ResponsesRequest) -> ChatCall:
    """The chat call the request amounts to. With truncation 'auto', a conversation that does not
    fit the context (with max_output_tokens) loses its oldest input messages, one at a time,
    until it does (OpenAI's "dropping items from the beginning of the conversation"); what still
    does not fit is the usual 400."""
    while True:
        try:
            return ChatCall(server, req.chat_body)
        except RequestError as e:
            if req.truncation != "auto" or e.code != "context_length_exceeded" or not req.drop_oldest():
                raise req.chat_error(e) from None


async def create(server, request) -> Response:
    """POST /v1/responses."""
    route = "/v1/responses"
    try:
        server._check_key(request)
        req = ResponsesRequest(await server._body(request), server.responses)
        chat = _chat_call(server, req)
        if chat.tools:
            req.parallel = chat.tools.parallel  # (the generic tool form's default is one call)
    except RequestError as e:
        return server._error(route, e)
    rid, created, n_prompt = _new_id("resp"), float(int(time.time())), len(chat.ids)

    def stored(r):
        if req.store:
            server.responses.put(rid, Stored(r, req.history, input_items(req.body["input"], _new_id)))
        return r

    writer = EventWriter(req, rid, created, server.model_id)
    usage_of = lambda chat_usage: lambda output: usage(chat_usage, output, server.llm, server.block_tokens)
    if req.background:
        queued = req.response(rid, created, server.model_id, [], "queued")
        server.responses.put(rid, Stored(queued, req.history, input_items(req.body["input"], _new_id)))
        server.metrics.tokens(n_prompt, 0)
        server.background[rid] = asyncio.create_task(_in_background(server, rid, chat, writer, n_prompt, usage_of, stored))
        server.metrics.request_done(route, 200)
        return JSONResponse(queued)
    if not chat.stream:
        # The whole reply goes through the stream's own steps as one piece (its events unsent), so
        # whole and streamed responses have the same items.
        def final(choices, chat_usage):
            c = choices[0]
            whole = StreamDelta(c.text, c.token_ids, True, c.finish_reason, c.logprobs, None, c.stop_reason)
            for chunk in chat.chunk(0, whole):
                for _ in writer.feed(chunk):
                    pass
            for _ in writer.finish(c.finish_reason, usage_of(chat_usage)):
                pass
            return stored(writer.final)
        return await server._respond(request, route, chat.jobs, n_prompt, chat.chunk, final, False)

    server.metrics.tokens(n_prompt, 0)

    async def sse():
        try:
            async for ev in _events(server, chat, writer, n_prompt, usage_of):
                yield ev
            stored(writer.final)
        except Exception as e:  # headers are sent: report it in the stream
            logger.exception("stream of %s failed", route)
            yield writer.error(e)
    server.metrics.request_done(route, 200)
    return StreamingResponse(sse(), media_type="text/event-stream")


async def _events(server, chat: ChatCall, writer: EventWriter, n_prompt: int, usage_of) -> AsyncIterator[str]:
    """Runs the chat call's jobs and yields the reply's events, the last one completing it
    (writer.final then holds the response)."""
    generated, reason, cached = 0, None, 0
    for ev in writer.start():
        yield ev
    async for index, d in server._run_choices(chat.jobs):
        generated += len(d.token_ids)
        cached = d.cached_tokens
        for chunk in chat.chunk(index, d):
            for ev in writer.feed(chunk):
                yield ev
        if d.finished:
            reason = d.finish_reason
    chat_usage = {"prompt_tokens": n_prompt, "completion_tokens": generated, "total_tokens": n_prompt + generated,
                  "prompt_tokens_details": {"cached_tokens": cached}}
    for ev in writer.finish(reason, usage_of(chat_usage)):
        yield ev


def _set_status(server, rid: str, status: str, **fields) -> Optional[Dict[str, Any]]:
    """The stored response rid with a new status (and fields); None when it is no longer stored."""
    item = server.responses.get(rid)
    if item is None:
        return None
    item.response = {**item.response, "status": status, **fields}
    return item.response


async def _in_background(server, rid: str, chat: ChatCall, writer: EventWriter, n_prompt: int, usage_of,
                         save) -> None:
    """A background response's run: its stored copy in_progress, then the whole response the
    events build (as a streamed one's), or failed. Cancelled (the cancel or delete route), the
    engine's sequences go with the task (server._run_choices) and the stored copy stays as the
    route left it."""
    _set_status(server, rid, "in_progress")
    try:
        async for _ in _events(server, chat, writer, n_prompt, usage_of):
            pass
        save(writer.final)
    except asyncio.CancelledError:
        raise
    except Exception as e:
        logger.exception("background response %s failed", rid)
        _set_status(server, rid, "failed", error={"code": "server_error",
                                                  "message": f"internal server error ({type(e).__name__})"})
    finally:
        server.background.pop(rid, None)


async def cancel(server, request) -> Response:
    """POST /v1/responses/{id}/cancel: stops a queued or in-progress background response and
    answers it, status cancelled; any other response is a 400."""
    route = "/v1/responses/{id}/cancel"
    rid = request.path_params["rid"]
    try:
        item = _stored(server, request)
        task = server.background.get(rid)
        if task is None:
            raise RequestError(f"only a queued or in-progress background response can be cancelled; this one is "
                               f"{item.response['status']}")
    except RequestError as e:
        return server._error(route, e)
    r = _set_status(server, rid, "cancelled")
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    server.metrics.request_done(route, 200)
    return JSONResponse(r)


def _stored(server, request) -> Stored:
    """The stored response the path names, after the API key check; else a 404."""
    server._check_key(request)
    rid = request.path_params["rid"]
    item = server.responses.get(rid)
    if item is None:
        raise RequestError(f"no stored response with id {rid!r}", status=404, code="not_found")
    return item


async def retrieve(server, request) -> Response:
    """GET /v1/responses/{id}: a stored response."""
    route = "/v1/responses/{id}"
    try:
        item = _stored(server, request)
    except RequestError as e:
        return server._error(route, e)
    server.metrics.request_done(route, 200)
    return JSONResponse(item.response)


async def list_inputs(server, request) -> Response:
    """GET /v1/responses/{id}/input_items: the stored response's input items, a page at a time
    (limit 1..100, 20 by default; order desc by default, or asc; after an item id)."""
    route = "/v1/responses/{id}/input_items"
    q = request.query_params
    try:
        item = _stored(server, request)
        order = q.get("order", "desc")
        if order not in ("asc", "desc"):
            raise RequestError("'order' must be 'asc' or 'desc'", "order")
        limit = q.get("limit", "20")
        if not limit.isdigit() or not 1 <= int(limit) <= 100:
            raise RequestError("'limit' must be an integer from 1 to 100", "limit")
        items = item.inputs if order == "asc" else item.inputs[::-1]
        if q.get("after") is not None:
            at = [i for i, it in enumerate(items) if it["id"] == q["after"]]
            if not at:
                raise RequestError(f"no input item with id {q['after']!r}", "after")
            items = items[at[0] + 1:]
    except RequestError as e:
        return server._error(route, e)
    page = items[:int(limit)]
    server.metrics.request_done(route, 200)
    return JSONResponse({"object": "list", "data": page, "first_id": page[0]["id"] if page else None,
                         "last_id": page[-1]["id"] if page else None, "has_more": len(items) > len(page)})


async def delete(server, request) -> Response:
    """DELETE /v1/responses/{id}."""
    route = "/v1/responses/{id}"
    rid = request.path_params["rid"]
    try:
        _stored(server, request)
        server.responses.delete(rid)
    except RequestError as e:
        return server._error(route, e)
    task = server.background.get(rid)
    if task is not None:  # a background response deleted while it runs stops
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    server.metrics.request_done(route, 200)
    return JSONResponse({"id": rid, "object": "response", "deleted": True})
