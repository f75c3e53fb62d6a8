"""The LLM class: load a model by name or path, then generate, stream, chat, tokenize, score, embed."""
from __future__ import annotations

import dataclasses
import os
import queue
import threading
from typing import TYPE_CHECKING, Iterator, List, Optional, Sequence, Union

if TYPE_CHECKING:  # numpy is imported by whoever hands arrays in; llmasos itself does not need it
    import numpy as np

from . import chat_template as chat_template_mod
from . import embeddings, store
from ._core_loader import _core
from .logprobs import TokenLogprobs, TokenPieces, as_dicts, from_core
from .sampling import GenerationOutput, SamplingParams, stop_reason
from .stop_strings import StopMatcher, TextStream

Prompt = Union[str, Sequence[int]]
KV_CACHE_TYPES = ("f16", "bf16", "f32", "q8_0")  # kv_cache_type's values (the CLI lists them too)


def _check_unicode(text: str) -> None:
    """A str with a lone UTF-16 surrogate (which JSON and Python allow) is not Unicode text: say
    so, instead of the binding's "incompatible function arguments"."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError(f"the text holds a lone surrogate {text[e.start]!r} at index {e.start}, "
                         "which is not Unicode text") from None

def _check_prompt_lookup(v) -> int:
    most = _core.max_lookup_tokens
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= most:
        raise ValueError(f"prompt_lookup must be an integer in [0, {most}], got {v!r}")
    return v


class LLM:
    """A loaded model and one sequence's state. Calls are serialized: one generation at a time."""

    def __init__(self, core_model: "_core.Model", *, path: str, seed: Optional[int] = None,
                 kv_cache_bytes: Optional[int] = None, max_batch_tokens: int = 512,
                 max_seqs: int = 64, chat_template: Optional[str] = None, prompt_lookup: int = 0):
        # Prompt-lookup speculation (stream and chat's session, generate's engine while it runs
        # few sequences): drafted tokens checked per forward pass; the output is unchanged.
        self.prompt_lookup = _check_prompt_lookup(prompt_lookup)
        self._model = core_model
        self._session = _core.Session(core_model)
        self._engine: Optional["_core.Engine"] = None  # created by the first generate()
        self._engine_args = dict(kv_cache_bytes=kv_cache_bytes or 0,
                                 max_batch_tokens=max_batch_tokens, max_seqs=max_seqs,
                                 lookup_tokens=self.prompt_lookup)
        self._next_request_id = 0
        self._lock = threading.Lock()
        self.path = path
        self.seed = seed
        self._token_pieces: Optional[TokenPieces] = None  # token texts for logprobs, made on use
        # The template chat renders with: the one given, else found on first use (the model's own,
        # or the fallback its vocabulary suits).
        self._chat_template: Optional[str] = (None if chat_template is None
                                              else chat_template_mod.check_template(chat_template))

    @classmethod
    def from_pretrained(cls, name_or_path: Union[str, os.PathLike], *, n_ctx: Optional[int] = None,
                        threads: Optional[int] = None, seed: Optional[int] = None,
                        kv_cache_bytes: Optional[int] = None, max_batch_tokens: int = 512,
                        max_seqs: int = 64, kv_cache_type: str = "f16",
                        repack_weights: bool = True, chat_template: Optional[str] = None,
                        prompt_lookup: int = 0) -> "LLM":
        """Loads a known model name (fetched into the store on first use) or a .gguf path.
        kv_cache_bytes (default: room for 4 * n_ctx tokens), max_batch_tokens and max_seqs size
        the batched engine generate() runs on. kv_cache_type: "f16" (default), "bf16", "f32" or
        "q8_0", the element type keys and values are kept in; "q8_0" (8-bit, a scale per 32
        dimensions of each position and KV head, as llama.cpp's --cache-type-k/v q8_0) holds
        about 1.8x the tokens in the same memory, at about F16's speed and a small cost in
        accuracy. repack_weights: quantized weights are
        copied once into a faster 8-row interleaved layout (the default); False uses them in
        place from the memory-mapped file (shared between processes that load it, slower).
        chat_template: Jinja text chat() renders with instead of the model's own (for a model
        whose GGUF carries none, or a wrong one). prompt_lookup: as llama-cpp-python's
        LlamaPromptLookupDecoding(num_pred_tokens=k), chat() and stream() check up to k tokens
        drafted from the context in each forward pass; the output is the same, token for token,
        and text that repeats its context comes faster (bench/lookup.py). 0 (default): off."""
        for name, v in (("n_ctx", n_ctx), ("threads", threads), ("kv_cache_bytes", kv_cache_bytes),
                        ("max_batch_tokens", max_batch_tokens), ("max_seqs", max_seqs)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v <= 0):
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if kv_cache_type not in KV_CACHE_TYPES:
            raise ValueError(f"kv_cache_type must be one of {', '.join(map(repr, KV_CACHE_TYPES))}, "
                             f"got {kv_cache_type!r}")
        if chat_template is not None:
            chat_template_mod.check_template(chat_template)  # before the load, not after it
        _check_prompt_lookup(prompt_lookup)  # before the load, not after it
        path = store.resolve(name_or_path)
        model = _core.Model(str(path), n_ctx=n_ctx or 0, threads=threads or 0,
                            kv_cache_type=kv_cache_type, repack=bool(repack_weights))
        return cls(model, path=str(path), seed=seed, kv_cache_bytes=kv_cache_bytes,
                   max_batch_tokens=max_batch_tokens, max_seqs=max_seqs, chat_template=chat_template,
                   prompt_lookup=prompt_lookup)

    # -- properties -------------------------------------------------------------------------
    @property
    def n_ctx(self) -> int:
        return self._core().n_ctx

    @property
    def n_vocab(self) -> int:
        return self._core().n_vocab

    @property
    def n_embd(self) -> int:
        return self._core().n_embd

    @property
    def threads(self) -> int:
        return self._core().threads

    @property
    def kv_cache_type(self) -> str:
        return self._core().kv_cache_type

    def metadata(self, key: str):
        return self._core().metadata(key)

    def _core(self) -> "_core.Model":
        if self._model is None:
            raise _core.LLMasOSError("this LLM has been closed")
        return self._model

    # -- tokens -------------------------------------------------------------------------------
    def tokenize(self, text: str, *, add_bos: Optional[bool] = None, special: bool = False) -> List[int]:
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        _check_unicode(text)
        m = self._core()
        return m.tokenize(text, m.add_bos if add_bos is None else bool(add_bos), bool(special))

    def detokenize(self, ids: Sequence[int], *, special: bool = False) -> str:
        return self._core().detokenize([int(i) for i in ids], special)

    def _prompt_ids(self, prompt: Prompt) -> List[int]:
        if isinstance(prompt, str):
            ids = self.tokenize(prompt)
        elif isinstance(prompt, (list, tuple)) or type(prompt).__name__ == "ndarray":
            ids = [int(t) for t in prompt]
            n = self.n_vocab
            bad = [t for t in ids if t < 0 or t >= n]
            if bad:
                raise ValueError(f"token id {bad[0]} is out of range [0, {n})")
        else:
            raise TypeError("a prompt is a str or a list of token ids")
        if not ids:
            raise ValueError("the prompt is empty")
        return ids

    # -- scoring ------------------------------------------------------------------------------
    def logits(self, token_ids: Sequence[int]) -> np.ndarray:
        """Logits at every position: float32 array of shape (len(token_ids), n_vocab)."""
        ids = self._prompt_ids(list(token_ids))
        with self._lock:
            return self._session.logits(ids)

    def _score(self, ids: List[int], k: int) -> List[Optional[TokenLogprobs]]:
        """The prompt's own tokens scored (Session.prompt_logprobs: a chunked pass, a few rows of
        logits held at a time): None for token 0, then token i's logprobs under the logits after
        tokens 0..i-1 with the k most likely alternatives."""
        with self._lock:
            raw = self._session.prompt_logprobs(ids, k)
        return [None] + from_core(ids[1:], raw or [])

    def _attach_prompt_logprobs(self, out: GenerationOutput, k: Optional[int]) -> None:
        if k is not None:
            scored = self._score(out.prompt_token_ids, k)
            out.prompt_logprobs = [None] + as_dicts(scored[1:], self._pieces())

    def embed(self, inputs, *, pooling: Optional[str] = None, normalize: bool = True) -> "np.ndarray":
        """Embeddings, as llama-cpp-python's embed(): each input's final-normed hidden states
        (one pass, no output head) pooled over its tokens ("mean", "last", or "cls" = the first;
        default: the GGUF's pooling_type, else mean) and L2-normalized unless normalize=False.
        A str or a token-id list gives shape (n_embd,); a list of them (n, n_embd) float32."""
        import numpy as np

        code = embeddings.pooling_code(pooling)
        prompts, single = embeddings.split_inputs(inputs)
        ids_list = [self._prompt_ids(p) for p in prompts]
        out = np.empty((len(ids_list), self.n_embd), dtype=np.float32)
        with self._lock:
            for i, ids in enumerate(ids_list):
                out[i] = self._session.embedding(ids, code, bool(normalize))
        return out[0] if single else out

    # -- generation ---------------------------------------------------------------------------
    def _run(self, ids: List[int], params: SamplingParams, on_text=None, score_prompt=True) -> GenerationOutput:
        """Generates for token ids; on_text(piece) receives text as it is released. score_prompt:
        attach params.prompt_logprobs (stream(), which returns no output, passes False)."""
        opts = params.to_core(self.seed)
        if params.n != 1:
            raise ValueError("n > 1 gives several outputs: use generate() (stream and chat give one)")
        matcher = StopMatcher(params.stop_strings(), params.include_stop_str_in_output)
        pieces: List[str] = []
        n_tokens = [0]

        def on_piece(_id: int, piece: str) -> bool:
            n_tokens[0] += 1
            out, stopped = matcher.feed(piece, n_tokens[0] >= params.min_tokens)
            if out:
                pieces.append(out)
                if on_text is not None and on_text(out) is False:
                    return False
            return not stopped

        with self._lock:
            self._core()
            opts.lookup_tokens = self.prompt_lookup
            gen_ids, finish, tail, raw_lps, stop_token, _, cached = self._session.generate(ids, opts, on_piece)
        if not matcher.stopped:
            out, _ = matcher.feed(tail)
            rest = out + matcher.flush()
            if rest:
                pieces.append(rest)
                if on_text is not None:
                    on_text(rest)
        if matcher.stopped:
            finish = "stop"
        out = GenerationOutput(text="".join(pieces), token_ids=list(gen_ids),
                               prompt_token_ids=ids, finish_reason=finish,
                               stop_reason=stop_reason(matcher.matched, stop_token, params.stop_token_ids,
                                                       params.ignore_eos, self._core().eos_id),
                               num_cached_tokens=cached)
        if raw_lps is not None:
            self._attach_logprobs(out, from_core(gen_ids, raw_lps))
        if score_prompt:
            self._attach_prompt_logprobs(out, params.prompt_logprobs)
        return out

    def _attach_logprobs(self, out: GenerationOutput, entries: List[TokenLogprobs]) -> None:
        out.logprobs = as_dicts(entries, self._pieces())
        out.cumulative_logprob = float(sum(e.logprob for e in entries))

    def _pieces(self) -> TokenPieces:
        if self._token_pieces is None:
            self._token_pieces = TokenPieces(self._core())
        return self._token_pieces

    def generate(self, prompts: Union[Prompt, Sequence[Prompt]],
                 params: Optional[SamplingParams] = None) -> List[GenerationOutput]:
        """Completes each prompt (a string or a list of token ids), all of them batched together
        on the engine (continuous batching over a paged KV cache). Each output equals what the
        prompt gives alone (greedy, or seeded sampling). With params.n > 1 each prompt gives n
        outputs in a row (index 0 .. n-1), choice c seeded with seed + c when there is a seed."""
        params = params or SamplingParams()
        if isinstance(prompts, str) or (isinstance(prompts, (list, tuple)) and prompts
                                        and isinstance(prompts[0], int)):
            prompts = [prompts]
        all_ids = [self._prompt_ids(p) for p in prompts]
        choices = [params.to_core(self.seed)]  # (every field checked, n too)
        if params.n > 1:  # choices differ in their seed only: the output constraint is compiled once
            base = params.seed if params.seed is not None else self.seed
            same = dataclasses.replace(params, json_schema=choices[0].json_schema, regex=None, choice=None,
                                       grammar=choices[0].grammar)
            choices = [dataclasses.replace(same, seed=None if base is None else base + c).to_core()
                       for c in range(params.n)]
        stops = params.stop_strings()
        jobs = [(ids, opts) for ids in all_ids for opts in choices]
        with self._lock:
            outs = self._generate_batch(self._get_engine(), [j[0] for j in jobs], [j[1] for j in jobs], stops,
                                        params.include_stop_str_in_output)
        for i, out in enumerate(outs):
            out.index = i % params.n
            if out.index == 0:
                self._attach_prompt_logprobs(out, params.prompt_logprobs)
            else:  # the prompt's own scores, computed once
                out.prompt_logprobs = outs[i - out.index].prompt_logprobs
        return outs

    def _get_engine(self) -> "_core.Engine":
        if self._engine is None:
            self._engine = _core.Engine(self._core(), **self._engine_args)
        return self._engine

    def _generate_batch(self, engine, all_ids: List[List[int]], opts_list, stops: List[str],
                        include_stop: bool = False) -> List[GenerationOutput]:
        """Runs requests (prompt ids, with opts_list's options each) to completion on `engine`;
        stop strings are matched per request here (as _run does) and cancel the request in the
        engine."""
        m = self._core()
        reqs = {}
        opts = opts_list[0]  # (what the requests share: stop tokens, EOS handling)
        try:
            for i, ids in enumerate(all_ids):
                rid = self._next_request_id
                self._next_request_id += 1
                engine.add_request(rid, ids, opts_list[i])
                reqs[rid] = _BatchRequest(i, ids, TextStream(m.stream_decoder(), stops, opts.min_tokens, include_stop),
                                          opts.sampling.logprobs >= 0)
            while any(not r.done for r in reqs.values()):
                step = engine.step()
                if not step and not engine.has_unfinished():
                    break  # nothing left to run (never expected while a request is open)
                for rid, new_ids, finished, reason, raw_lps, stop_token, cached in step:
                    r = reqs.get(rid)
                    if r is None or r.done:
                        continue
                    r.cached_tokens = cached
                    if r.feed(new_ids, raw_lps):  # a stop string: the engine needs no more of it
                        engine.cancel(rid)
                    elif finished:
                        r.finish(reason, stop_reason(None, stop_token, opts.stop_token_ids, opts.ignore_eos,
                                                     m.eos_id))
        finally:
            for rid, r in reqs.items():
                if not r.done:
                    engine.cancel(rid)
        outs: List[Optional[GenerationOutput]] = [None] * len(all_ids)
        for r in reqs.values():
            if not r.done:
                r.finish(None)
            outs[r.index] = r.output()
            if r.logprobs is not None:
                self._attach_logprobs(outs[r.index], r.logprobs)
        return outs  # type: ignore[return-value]

    def generate_text(self, prompt: str, *, max_tokens: int = 128, temperature: float = 0.0,
                      top_k: Optional[int] = None, top_p: Optional[float] = None,
                      min_p: Optional[float] = None, repetition_penalty: Optional[float] = None,
                      seed: Optional[int] = None, stop=None) -> str:
        params = SamplingParams(max_tokens=max_tokens, temperature=temperature, top_k=top_k,
                                top_p=top_p, min_p=min_p, repetition_penalty=repetition_penalty,
                                seed=seed, stop=stop)
        return self.generate(prompt, params)[0].text

    def stream(self, prompt: Prompt, params: Optional[SamplingParams] = None) -> Iterator[str]:
        """Yields text pieces as they are generated; they join to the full text. Closing the
        iterator early stops the generation."""
        params = params or SamplingParams()
        ids = self._prompt_ids(prompt)
        params.to_core(self.seed)  # validate before starting the thread
        if params.n != 1:
            raise ValueError("n > 1 gives several outputs: use generate() (stream and chat give one)")
        q: "queue.Queue" = queue.Queue()
        cancelled = threading.Event()
        done = object()

        def on_text(piece: str):
            q.put(piece)
            return not cancelled.is_set()

        def work():
            try:
                self._run(ids, params, on_text, score_prompt=False)
                q.put(done)
            except BaseException as e:  # handed to the consumer
                q.put(e)

        t = threading.Thread(target=work, daemon=True)
        t.start()
        try:
            while True:
                item = q.get()
                if item is done:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            cancelled.set()
            t.join()

    def chat(self, messages, params: Optional[SamplingParams] = None, *,
             add_generation_prompt: Optional[bool] = None, continue_final_message: bool = False,
             chat_template_kwargs: Optional[dict] = None, tools: Optional[list] = None) -> GenerationOutput:
        """Answers a conversation ([{'role': ..., 'content': ...}, ...]) with the chat template;
        the keywords as chat_prompt_ids'."""
        ids = self.chat_prompt_ids(messages, add_generation_prompt=add_generation_prompt,
                                   continue_final_message=continue_final_message,
                                   chat_template_kwargs=chat_template_kwargs, tools=tools)
        return self._run(ids, params or SamplingParams())

    @property
    def chat_template(self) -> str:
        """The Jinja text chat renders with: the one given to from_pretrained, else the model's
        own, else the fallback its vocabulary suits (Gemma's turns or ChatML)."""
        if self._chat_template is None:
            self._chat_template = (self._core().metadata("tokenizer.chat_template")
                                   or chat_template_mod.fallback_template(self._is_token))
        return self._chat_template

    def _is_token(self, text: str) -> bool:
        """Whether the vocabulary has `text` as one token (a special one counts)."""
        m = self._core()
        return [m.token_text(i) for i in m.tokenize(text, False, True)] == [text]

    def chat_prompt_ids(self, messages, *, add_generation_prompt: Optional[bool] = None,
                        continue_final_message: bool = False,
                        chat_template_kwargs: Optional[dict] = None, tools: Optional[list] = None) -> List[int]:
        """The token ids of a conversation rendered by the chat template, ending in the
        assistant's turn header unless add_generation_prompt is False (its default: True, False
        with continue_final_message). As vLLM: continue_final_message ends them right after the
        last message, an assistant's, for the model to go on with it; chat_template_kwargs are
        more variables for the template (Qwen3's enable_thinking, ...); tools (OpenAI's
        [{'type': 'function', 'function': {...}}, ...], as vLLM's LLM.chat takes them) go to the
        template as its `tools` variable, for a template that writes them (Hermes, Qwen)."""
        text = self.chat_prompt_text(messages, add_generation_prompt=add_generation_prompt,
                                     continue_final_message=continue_final_message,
                                     chat_template_kwargs=chat_template_kwargs, tools=tools)
        m = self._core()
        bos = m.token_text(m.bos_id) if m.bos_id >= 0 else ""
        add_bos = m.add_bos and not (bos and text.startswith(bos))
        return self._prompt_ids(m.tokenize(text, add_bos, True))

    def chat_prompt_text(self, messages, *, add_generation_prompt: Optional[bool] = None,
                         continue_final_message: bool = False,
                         chat_template_kwargs: Optional[dict] = None, tools: Optional[list] = None) -> str:
        """The text chat_prompt_ids tokenizes (special tokens written out), without a BOS the
        tokenizer adds; as llama.cpp server's /apply-template returns it."""
        if tools is not None:
            if not isinstance(tools, list):
                raise ValueError("tools must be a list of {'type': 'function', 'function': {...}}")
            chat_template_kwargs = {**(chat_template_kwargs or {}), "tools": tools}
        if add_generation_prompt is None:
            add_generation_prompt = not continue_final_message
        m = self._core()
        bos = m.token_text(m.bos_id) if m.bos_id >= 0 else ""
        eos = m.token_text(m.eos_id) if m.eos_id >= 0 else ""
        text = chat_template_mod.render(self.chat_template, messages, bos_token=bos, eos_token=eos,
                                        add_generation_prompt=add_generation_prompt,
                                        continue_final_message=continue_final_message,
                                        kwargs=chat_template_kwargs)
        _check_unicode(text)
        return text

    # -- lifetime -------------------------------------------------------------------------------
    def close(self) -> None:
        """Frees the model and its KV cache."""
        with self._lock:
            self._session = None
            self._engine = None
            self._token_pieces = None
            self._model = None

    def __enter__(self) -> "LLM":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _BatchRequest:
    """One request of a batched generate(): its tokens and released text (see TextStream)."""

    def __init__(self, index: int, prompt_ids: List[int], stream: TextStream, logprobs: bool):
        self.index = index
        self.prompt_ids = prompt_ids
        self.stream = stream
        self.token_ids: List[int] = []
        # One per token of token_ids (up to the token that completed a stop string), as vLLM.
        self.logprobs: Optional[List[TokenLogprobs]] = [] if logprobs else None
        self.pieces: List[str] = []
        self.finish_reason: Optional[str] = None
        self.stop_reason: Union[int, str, None] = None
        self.cached_tokens = 0

    @property
    def done(self) -> bool:
        return self.finish_reason is not None

    def feed(self, new_ids: Sequence[int], raw_lps=None) -> bool:
        """Adds generated tokens (and their core logprobs); True when a stop string ended the
        request."""
        out, used = self.stream.feed(new_ids)
        self.token_ids.extend(new_ids[:used])
        if self.logprobs is not None and raw_lps is not None:
            self.logprobs.extend(from_core(new_ids[:used], raw_lps[:used]))
        if out:
            self.pieces.append(out)
        if self.stream.stopped:
            self.finish_reason = "stop"
            self.stop_reason = self.stream.matcher.matched
        return self.stream.stopped

    def finish(self, reason: Optional[str], stop_reason=None) -> None:
        rest = self.stream.finish()
        if rest:
            self.pieces.append(rest)
        self.finish_reason = "stop" if self.stream.stopped else (reason or "stop")
        self.stop_reason = self.stream.matcher.matched if self.stream.stopped else stop_reason

    def output(self) -> GenerationOutput:
        return GenerationOutput(text="".join(self.pieces), token_ids=list(self.token_ids),
                                prompt_token_ids=self.prompt_ids,
                                finish_reason=self.finish_reason or "stop", stop_reason=self.stop_reason,
                                num_cached_tokens=self.cached_tokens)
