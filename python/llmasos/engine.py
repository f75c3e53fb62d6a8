"""AsyncEngine: many concurrent requests over the C++ continuous-batching engine.

A background thread runs engine.step() (one forward pass over the whole batch, GIL released)
while asyncio tasks add requests, receive their text as it is decoded, and cancel them."""
from __future__ import annotations

import asyncio
import dataclasses
import itertools
import threading
import time
from typing import AsyncIterator, Dict, List, Optional, Union

from ._core_loader import _core
from .llm import LLM
from .logprobs import TokenLogprobs, from_core
from .sampling import SamplingParams, stop_reason
from .stop_strings import TextStream


@dataclasses.dataclass
class StreamDelta:
    """A piece of one request's output. logprobs (requests that asked for them): the tokens whose
    text begins in `text`, with their offsets into the whole generated text; tokens wholly inside
    a stop string that ended the request are left out, so they can be fewer than token_ids.
    end_logprobs (the last delta of a request that asked for logprobs and ended at an
    end-of-generation or stop_token_ids token): that token's, its offset the end of the text; it
    is not among token_ids, as its text is not part of the output. stop_reason (the last delta):
    as GenerationOutput's. cached_tokens: as GenerationOutput's num_cached_tokens."""

    text: str
    token_ids: List[int]
    finished: bool = False
    finish_reason: Optional[str] = None
    logprobs: Optional[List[TokenLogprobs]] = None
    end_logprobs: Optional[TokenLogprobs] = None
    stop_reason: Union[int, str, None] = None
    cached_tokens: int = 0


class _Request:
    def __init__(self, rid, loop, queue, decoder, stops, logprobs: bool, params: SamplingParams):
        self.rid = rid
        self.loop = loop
        self.queue: asyncio.Queue = queue
        self.stream = TextStream(decoder, stops, params.min_tokens, params.include_stop_str_in_output)
        self.done = False
        self.logprobs: Optional[List[TokenLogprobs]] = [] if logprobs else None  # per used token
        self.n_sent = 0  # of self.logprobs already handed out
        self.params = params

    def released_logprobs(self, raw, ids) -> Optional[List[TokenLogprobs]]:
        """Records the logprobs of the used `ids`; returns those whose text is now released."""
        if self.logprobs is None:
            return None
        if raw is not None:
            self.logprobs.extend(from_core(ids, raw[:len(ids)]))
        n = self.stream.released_tokens()
        for i in range(self.n_sent, n):
            self.logprobs[i].text_offset = self.stream.starts[i]
        out, self.n_sent = self.logprobs[self.n_sent:n], max(self.n_sent, n)
        return out


class AsyncEngine:
    """Requests from asyncio tasks, batched continuously on the model's C++ engine (its own KV
    pool): `async for delta in engine.generate(prompt, params)`; engine.stats() is the engine's
    counters (running and waiting sequences, KV blocks used and free, prefix-cache hits)."""

    def __init__(self, llm: LLM, *, max_batch_tokens: int = 512, max_seqs: int = 64,
                 kv_cache_bytes: int = 0, lookup_tokens: int = 0):
        self.llm = llm
        self.engine = _core.Engine(llm._core(), kv_cache_bytes=kv_cache_bytes,
                                   max_batch_tokens=max_batch_tokens, max_seqs=max_seqs,
                                   lookup_tokens=lookup_tokens)
        self._requests: Dict[int, _Request] = {}
        self._ids = itertools.count(1)
        self._mu = threading.Lock()
        self._wake = threading.Event()
        self._stop = False
        self.step_seconds = 0.0  # cumulative, for metrics
        self._thread = threading.Thread(target=self._loop, name="llmasos-engine", daemon=True)
        self._thread.start()

    # -- the step loop (background thread) ----------------------------------------------------
    def _loop(self):
        # A failure never ends this thread (every request would then wait forever): a failed step
        # fails the requests in flight, a failure on one request's output fails that request; the
        # error reaches their consumers and the loop goes on with the rest.
        while not self._stop:
            if not self.engine.has_unfinished():
                self._wake.wait(0.1)
                self._wake.clear()
                continue
            t0 = time.perf_counter()
            try:
                outs = self.engine.step()
            except Exception as e:
                with self._mu:
                    failed = list(self._requests.values())
                for req in failed:
                    self._fail(req, e)
                time.sleep(0.01)  # should the step keep failing, do not spin a core on it
                continue
            finally:
                self.step_seconds += time.perf_counter() - t0
            for rid, new_ids, finished, reason, raw_lps, stop_token, cached in outs:
                with self._mu:
                    req = self._requests.get(rid)
                if req is None or req.done:
                    continue
                try:
                    self._deliver(req, new_ids, finished, reason, raw_lps, stop_token, cached)
                except Exception as e:
                    self._fail(req, e)

    def _deliver(self, req: _Request, new_ids, finished: bool, reason, raw_lps, stop_token, cached: int) -> None:
        out, used = req.stream.feed(new_ids)
        end, why = None, None
        if req.stream.stopped:  # a stop string cut the text: what came after it is not reported
            if not finished:
                self.engine.cancel(req.rid)
            finished, reason, why = True, "stop", req.stream.matcher.matched
        elif finished:
            out += req.stream.finish()
            why = stop_reason(None, stop_token, req.params.stop_token_ids, req.params.ignore_eos,
                              self.llm._core().eos_id)
            if stop_token is not None and raw_lps is not None and len(raw_lps) > len(new_ids):
                end = from_core([stop_token], raw_lps[len(new_ids):])[0]
                end.text_offset = req.stream.released_chars()
        lps = req.released_logprobs(raw_lps, new_ids[:used])
        delta = StreamDelta(out, list(new_ids[:used]), finished, reason if finished else None, lps, end, why, cached)
        if finished:
            self._retire(req)
        req.loop.call_soon_threadsafe(req.queue.put_nowait, delta)

    def _retire(self, req: _Request) -> None:
        """Takes a request off the books: no more output reaches it."""
        req.done = True
        with self._mu:
            self._requests.pop(req.rid, None)

    def _fail(self, req: _Request, error: BaseException) -> None:
        """Ends a request with `error` (raised to its consumer); its KV blocks are freed."""
        if req.done:
            return
        self._retire(req)
        try:
            self.engine.cancel(req.rid)
        except Exception:
            pass  # the engine may be what failed; the request is out of our books either way
        try:
            req.loop.call_soon_threadsafe(req.queue.put_nowait, error)
        except RuntimeError:
            pass  # its event loop is closed: nobody is waiting

    def close(self):
        """Stops the step thread (requests still running get no more output)."""
        self._stop = True
        self._wake.set()
        self._thread.join()

    def __enter__(self) -> "AsyncEngine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- requests (asyncio side) ------------------------------------------------------------------
    async def generate(self, prompt: Union[str, List[int]],
                       params: Optional[SamplingParams] = None) -> AsyncIterator[StreamDelta]:
        """Yields the request's deltas (text as it is decoded, never a broken UTF-8 character)
        until it finishes; closing the iterator (or cancelling the task reading it) cancels the
        request and frees its KV blocks at once. prompt: text or token ids."""
        params = params or SamplingParams()
        prompt_ids = self.llm._prompt_ids(prompt)
        opts = params.to_core(self.llm.seed)
        if params.n != 1:
            raise ValueError("n > 1: one generate() per completion (one stream each)")
        rid = next(self._ids)
        req = _Request(rid, asyncio.get_running_loop(), asyncio.Queue(),
                       self.llm._core().stream_decoder(), params.stop_strings(),
                       opts.sampling.logprobs >= 0, params)
        with self._mu:
            self._requests[rid] = req
        try:
            self.engine.add_request(rid, list(prompt_ids), opts)
        except BaseException:
            with self._mu:
                self._requests.pop(rid, None)
            raise
        if req.done:  # a failed step failed it between registering and adding: do not let it run
            self.engine.cancel(rid)
        self._wake.set()
        try:
            while True:
                delta = await req.queue.get()
                if isinstance(delta, BaseException):  # the engine failed this request
                    raise delta
                yield delta
                if delta.finished:
                    return
        finally:
            if not req.done:  # the consumer went away: free the request's KV blocks now
                self._retire(req)
                self.engine.cancel(rid)

    def stats(self) -> dict:
        return self.engine.stats()
