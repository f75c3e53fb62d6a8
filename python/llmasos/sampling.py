"""SamplingParams (what to generate) and GenerationOutput (what came back)."""
from __future__ import annotations

import dataclasses
import math
import operator
from typing import Dict, List, Optional, Sequence, Union

from ._core_loader import _core
from .logprobs import MAX_LOGPROBS, Logprob


MAX_N = 256  # completions per prompt


@dataclasses.dataclass
class SamplingParams:
    """How to sample. temperature 0 is greedy; None leaves a filter off."""

    max_tokens: int = 128
    # As vLLM and OpenAI: completions per prompt. LLM.generate gives each prompt's n outputs in a
    # row (GenerationOutput.index 0 .. n-1); seeded, choice c draws with seed + c.
    n: int = 1
    temperature: float = 0.0
    top_k: Optional[int] = None
    top_p: Optional[float] = None
    min_p: Optional[float] = None
    repetition_penalty: Optional[float] = None
    # The tokens repetition_penalty looks at: 0 all of prompt + output (HF, vLLM), n > 0 the last
    # n of them (llama.cpp's repeat_last_n).
    repetition_last_n: int = 0
    presence_penalty: Optional[float] = None
    frequency_penalty: Optional[float] = None
    seed: Optional[int] = None
    stop: Optional[Union[str, Sequence[str]]] = None
    stop_token_ids: Optional[Sequence[int]] = None
    ignore_eos: bool = False
    # As vLLM: no end-of-generation token, stop_token_ids token or stop string ends the output
    # before it has this many tokens. At most max_tokens.
    min_tokens: int = 0
    # As vLLM: the stop string that ended the output stays at its end.
    include_stop_str_in_output: bool = False
    logit_bias: Optional[Dict[int, float]] = None  # token id -> bias in [-100, 100], added to logits
    # As vLLM: when given (not empty), only these token ids can be drawn.
    allowed_token_ids: Optional[Sequence[int]] = None
    # As vLLM: None computes no logprobs; k in [0, MAX_LOGPROBS] reports each generated token's
    # logprob plus the k most likely alternatives (raw model distribution, see logprobs.py).
    logprobs: Optional[int] = None
    # As vLLM: k in [0, MAX_LOGPROBS] also scores the prompt's own tokens (GenerationOutput.
    # prompt_logprobs), each with the k most likely alternatives; how lm-evaluation-harness's
    # vLLM backend scores text.
    prompt_logprobs: Optional[int] = None
    # JSON mode (OpenAI's response_format {"type": "json_object"}): the output is one JSON object,
    # sampled only from tokens that keep it valid; generation stops when the object closes.
    json_object: bool = False
    # Structured outputs (OpenAI's response_format {"type": "json_schema"}): a JSON schema (a dict,
    # or what json_schema.compile_schema made of one, to compile it once for many requests); the
    # output is the compact JSON it accepts, objects with their declared properties in order
    # (the optional ones when the model writes them; json_schema.py says what is supported);
    # generation stops when the document is complete.
    json_schema: Optional[Union[dict, "_core.JsonSchema"]] = None
    # As vLLM's guided decoding: the whole output matches the regular expression `regex`
    # (regex_dfa.py's subset), or is exactly one of the strings in `choice`. Generation may stop
    # (end of text) where the pattern is matched, and does where nothing more could follow.
    regex: Optional[str] = None
    choice: Optional[Sequence[str]] = None
    # A GBNF grammar (llama.cpp's format, gbnf.py; or what gbnf.compile_grammar made of one): the
    # whole output is text its root rule derives. Generation may stop (end of text) where the
    # text is complete, and does where nothing more could follow.
    grammar: Optional[Union[str, "_core.Grammar"]] = None

    def stop_strings(self) -> List[str]:
        if self.stop is None:
            return []
        stops = [self.stop] if isinstance(self.stop, str) else list(self.stop)
        for s in stops:
            if not isinstance(s, str) or not s:
                raise ValueError(f"stop strings must be non-empty strings, got {s!r}")
        return stops

    def to_core(self, default_seed: Optional[int] = None) -> "_core.GenerateOptions":
        """Validates and converts to the core's option struct (ValueError on nonsense)."""
        def num(name, value, lo=None, hi=None, lo_open=False):
            if value is None:
                return None
            if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
                raise ValueError(f"{name} must be a number, got {value!r}")
            if lo is not None and (value < lo or (lo_open and value == lo)):
                raise ValueError(f"{name} must be {'>' if lo_open else '>='} {lo}, got {value}")
            if hi is not None and value > hi:
                raise ValueError(f"{name} must be <= {hi}, got {value}")
            return value

        if isinstance(self.max_tokens, bool) or not isinstance(self.max_tokens, int) or self.max_tokens <= 0:
            raise ValueError(f"max_tokens must be a positive integer, got {self.max_tokens!r}")
        if isinstance(self.n, bool) or not isinstance(self.n, int) or not 1 <= self.n <= MAX_N:
            raise ValueError(f"n must be an integer in [1, {MAX_N}], got {self.n!r}")
        o = _core.GenerateOptions()
        o.max_tokens = self.max_tokens
        o.ignore_eos = bool(self.ignore_eos)
        if isinstance(self.min_tokens, bool) or not isinstance(self.min_tokens, int) or \
                not 0 <= self.min_tokens <= self.max_tokens:
            raise ValueError(f"min_tokens must be an integer in [0, max_tokens={self.max_tokens}], "
                             f"got {self.min_tokens!r}")
        o.min_tokens = self.min_tokens
        if not isinstance(self.include_stop_str_in_output, bool):
            raise ValueError(f"include_stop_str_in_output must be a boolean, got {self.include_stop_str_in_output!r}")
        if not isinstance(self.json_object, bool):
            raise ValueError(f"json_object must be a boolean, got {self.json_object!r}")
        o.json_object = self.json_object
        given = [k for k in ("json_object", "json_schema", "regex", "choice", "grammar")
                 if getattr(self, k) not in (None, False)]
        if len(given) > 1:
            raise ValueError(f"give one of json_object, json_schema, regex, choice and grammar, not {' and '.join(given)}")
        if isinstance(self.json_schema, _core.JsonSchema):
            o.json_schema = self.json_schema
        elif self.json_schema is not None:
            from .json_schema import compile_schema
            o.json_schema = compile_schema(self.json_schema)
        elif self.regex is not None:
            from .json_schema import compile_regex
            o.json_schema = compile_regex(self.regex)
        elif self.choice is not None:
            from .json_schema import compile_choice
            o.json_schema = compile_choice(self.choice)
        elif isinstance(self.grammar, _core.Grammar):
            o.grammar = self.grammar
        elif self.grammar is not None:
            from .gbnf import compile_grammar
            o.grammar = compile_grammar(self.grammar)
        o.stop_token_ids = _token_ids("stop_token_ids", self.stop_token_ids)
        s = o.sampling
        if self.allowed_token_ids is not None:
            s.allowed_token_ids = _token_ids("allowed_token_ids", self.allowed_token_ids)
            if not s.allowed_token_ids:
                raise ValueError("allowed_token_ids must not be empty (None allows every token)")
        n = self.repetition_last_n
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n < 2**31:
            raise ValueError(f"repetition_last_n must be a non-negative integer, got {n!r}")
        s.repetition_last_n = n
        s.temperature = float(num("temperature", self.temperature, 0.0, 100.0) or 0.0)
        if self.top_k is not None:
            if isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k < 0:
                raise ValueError(f"top_k must be a non-negative integer, got {self.top_k!r}")
            s.top_k = self.top_k
        if self.top_p is not None:
            s.top_p = float(num("top_p", self.top_p, 0.0, 1.0, lo_open=True))
        if self.min_p is not None:
            s.min_p = float(num("min_p", self.min_p, 0.0, 1.0))
        if self.repetition_penalty is not None:
            s.repetition_penalty = float(num("repetition_penalty", self.repetition_penalty, 0.0, lo_open=True))
        if self.presence_penalty is not None:
            s.presence_penalty = float(num("presence_penalty", self.presence_penalty, -2.0, 2.0))
        if self.frequency_penalty is not None:
            s.frequency_penalty = float(num("frequency_penalty", self.frequency_penalty, -2.0, 2.0))
        seed = self.seed if self.seed is not None else default_seed
        if seed is not None:
            if isinstance(seed, bool) or not isinstance(seed, int):
                raise ValueError(f"seed must be an integer, got {seed!r}")
            s.has_seed = True
            s.seed = seed & 0xFFFFFFFFFFFFFFFF
        if self.logit_bias:
            if not isinstance(self.logit_bias, dict):
                raise ValueError("logit_bias must be a dict of token id -> bias")
            bias = []
            for k, v in self.logit_bias.items():
                if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < 2**31:
                    raise ValueError(f"logit_bias keys must be token ids (integers in [0, 2^31)), got {k!r}")
                bias.append((k, float(num("logit_bias value", v, -100.0, 100.0))))
            s.logit_bias = bias
        if self.logprobs is not None:
            k = self.logprobs
            if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= MAX_LOGPROBS:
                raise ValueError(f"logprobs must be an integer in [0, {MAX_LOGPROBS}] or None, got {k!r}")
            s.logprobs = k
        k = self.prompt_logprobs
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= MAX_LOGPROBS):
            raise ValueError(f"prompt_logprobs must be an integer in [0, {MAX_LOGPROBS}] or None, got {k!r}")
        self.stop_strings()  # validate
        return o


def _token_ids(name: str, ids) -> List[int]:
    """ids as a list of token ids: any integer type (numpy's too), not bool or float."""
    out = []
    for t in ids or []:
        try:
            i = -1 if isinstance(t, bool) else operator.index(t)
        except TypeError:
            i = -1
        if not 0 <= i < 2**31:
            raise ValueError(f"{name} must be token ids (integers in [0, 2^31)), got {t!r}")
        out.append(i)
    return out


@dataclasses.dataclass
class GenerationOutput:
    """One completion: its text and tokens, the prompt's tokens, and why it ended. With
    SamplingParams.logprobs set, `logprobs` has one {token id: Logprob} per token of token_ids
    (the sampled token first, then the alternatives) and cumulative_logprob their sum. With
    SamplingParams.prompt_logprobs set, `prompt_logprobs` has one per prompt token, the same way,
    under the logits before it: None for the first, which nothing comes before (as vLLM)."""

    text: str
    token_ids: List[int]
    prompt_token_ids: List[int]
    finish_reason: str  # "stop" or "length"
    logprobs: Optional[List[Dict[int, Logprob]]] = None
    cumulative_logprob: Optional[float] = None
    prompt_logprobs: Optional[List[Optional[Dict[int, Logprob]]]] = None
    # As vLLM: the stop string that ended the text, else the stop_token_ids token that did; None
    # when it ended at the end-of-generation token or for length.
    stop_reason: Union[int, str, None] = None
    # As vLLM's CompletionOutput.index: which of the prompt's n completions this is.
    index: int = 0
    # As vLLM: how many of the prompt's tokens were cached (the engine's prefix cache: whole
    # 16-token blocks; the single-sequence session: the prefix it shares with its last prompt).
    num_cached_tokens: int = 0


def stop_reason(stop_string: Optional[str], stop_token: Optional[int], stop_token_ids: Optional[Sequence[int]],
                ignore_eos: bool, eos_id: int) -> Union[int, str, None]:
    """GenerationOutput.stop_reason from what the text stream matched and the token (if any) the
    engine stopped at. As vLLM checks the model's EOS before stop_token_ids, EOS is None even
    when stop_token_ids lists it."""
    if stop_string is not None:
        return stop_string
    if stop_token is None or (stop_token == eos_id and not ignore_eos):
        return None
    return int(stop_token) if stop_token in (stop_token_ids or ()) else None
