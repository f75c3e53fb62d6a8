"""Finds stop strings in streamed text, across token boundaries, holding back only the text that
could still turn out to be the start of a stop string."""
from __future__ import annotations

import bisect
from typing import List, Optional, Tuple


class StopMatcher:
    def __init__(self, stops: List[str], include_stop: bool = False):
        self.stops = stops
        self.include_stop = include_stop  # vLLM's include_stop_str_in_output: the text ends with it
        self.buffer = ""      # text received but not yet released
        self.stopped = False
        self.matched: Optional[str] = None  # the stop string found (the earliest in the text)
        # The buffer's first characters came while stops were off (min_tokens): a stop string
        # ending among them does not count (as vLLM looks only where the new text is).
        self.quiet = 0

    def feed(self, piece: str, can_stop: bool = True) -> Tuple[str, bool]:
        """Adds a piece; returns (text safe to emit now, whether a stop string was found).
        can_stop False (min_tokens not reached yet): no stop string ends the text here, but one
        that this piece begins can still end it later."""
        if self.stopped:
            return "", True
        self.buffer += piece
        if not self.stops:
            out, self.buffer = self.buffer, ""
            return out, False
        hits = [(i, s) for s, i in ((s, self._find(s)) for s in self.stops) if i >= 0] if can_stop else []
        if hits:
            at, self.matched = min(hits, key=lambda h: h[0])
            out = self.buffer[:at + (len(self.matched) if self.include_stop else 0)]
            self.buffer = ""
            self.stopped = True
            return out, True
        # Hold back the longest suffix that is a prefix of some stop string.
        hold = 0
        for s in self.stops:
            for k in range(min(len(s) - 1, len(self.buffer)), hold, -1):
                if self.buffer.endswith(s[:k]):
                    hold = k
                    break
        cut = len(self.buffer) - hold
        out, self.buffer = self.buffer[:cut], self.buffer[cut:]
        self.quiet = len(self.buffer) if not can_stop else max(0, self.quiet - cut)
        return out, False

    def _find(self, s: str) -> int:
        """Where s first occurs in the buffer ending past the quiet part, else -1."""
        i = self.buffer.find(s)
        while 0 <= i and i + len(s) <= self.quiet:
            i = self.buffer.find(s, i + 1)
        return i

    def flush(self) -> str:
        out, self.buffer = ("" if self.stopped else self.buffer), ""
        return out


class TextStream:
    """One request's generated tokens -> released text: UTF-8-safe decoding (a core
    StreamDecoder), then stop strings. Shared by batched generate() and the AsyncEngine.

    It also knows where each used token's text begins (`starts`, characters into the generated
    text) and so which tokens the released text covers: a token counts as released once the text
    released reaches past its start. A token whose bytes only complete a character later starts
    where that character does; a token lying wholly inside a stop string is never released."""

    def __init__(self, decoder, stops: List[str], min_tokens: int = 0, include_stop: bool = False):
        self.decoder = decoder
        self.matcher = StopMatcher(stops, include_stop)
        self.min_tokens = min_tokens  # no stop string ends the text before this many tokens
        self.starts: List[int] = []  # per used token
        self._decoded = 0            # characters decoded (released or held back)
        self._released = 0           # characters released
        self._finished = False

    @property
    def stopped(self) -> bool:
        return self.matcher.stopped

    def feed(self, ids) -> Tuple[str, int]:
        """(text released, how many of `ids` were used): a stop string ends the request at the
        token that completed it."""
        pieces = []
        for n, t in enumerate(ids, 1):
            piece = self.decoder.push(t)
            self.starts.append(self._decoded)
            self._decoded += len(piece)
            out, stopped = self.matcher.feed(piece, len(self.starts) >= self.min_tokens)
            pieces.append(out)
            self._released += len(out)
            if stopped:
                return "".join(pieces), n
        return "".join(pieces), len(ids)

    def finish(self) -> str:
        """The rest of the text once generation has ended without a stop string."""
        out, _ = self.matcher.feed(self.decoder.flush())
        out += self.matcher.flush()
        self._released += len(out)
        self._finished = not self.stopped
        return out

    def released_chars(self) -> int:
        """Characters of text released so far."""
        return self._released

    def released_tokens(self) -> int:
        """How many of the used tokens the released text covers (all, once finished without a
        stop string)."""
        if self._finished:
            return len(self.starts)
        return bisect.bisect_left(self.starts, self._released)
