"""A thinking model's reply split into its reasoning and its answer, as llama.cpp's server
(--reasoning-format auto) and vLLM's reasoning parsers (qwen3, deepseek_r1) return them: the text
inside <think> ... </think> goes to the chat message's `reasoning_content`, the rest to
`content`.

The reasoning is open from the start when the prompt itself ends with <think> (DeepSeek R1's
template writes "<think>\\n" after the assistant header; a <think> anywhere else in the prompt, in
a user's message, does not count), and a <think> the reply still starts with is dropped; else it
opens only with a <think> at the very start of the reply (Qwen3's way; whitespace before it
allowed). Whitespace around the reasoning and at the start of the answer is dropped, as llama.cpp
does. A reply cut off while thinking (max_tokens) has all its text as reasoning and an empty
answer.

Works on text, streamed: a piece that could be the start of a tag is held back until it is not.
The same splitter gives the same parts whether the text comes whole or in pieces."""
from __future__ import annotations

from typing import Optional, Tuple

OPEN, CLOSE = "<think>", "</think>"


def thinks(is_token, template: Optional[str]) -> bool:
    """Whether a model thinks in <think> tags: its vocabulary has both as single tokens
    (is_token(text)), or its chat template writes them."""
    if is_token(OPEN) and is_token(CLOSE):
        return True
    return bool(template) and OPEN in template and CLOSE in template


def open_at_start(prompt_text: str, continued: Optional[str] = None) -> bool:
    """Whether the prompt leaves a <think> open for the reply to go on with: it ends with one
    (trailing whitespace aside, as llama.cpp's thinking_forced_open), or `continued`, the last
    message's content when the reply goes on with it, has one unclosed."""
    if prompt_text.rstrip().endswith(OPEN):
        return True
    return continued is not None and continued.rfind(OPEN) > continued.rfind(CLOSE)


def _held(buf: str, tag: str) -> int:
    """How many characters at the end of buf could begin tag (so must wait for more text)."""
    for k in range(min(len(tag) - 1, len(buf)), 0, -1):
        if buf.endswith(tag[:k]):
            return k
    return 0


class ReasoningSplitter:
    # States: "start" (before the reply's first non-space text: a <think> may open), "think"
    # (inside the reasoning), "gap" (after </think>, dropping whitespace), "answer".
    def __init__(self, opened: bool):
        self.opened = opened  # "start" then goes on in the reasoning, dropping a leading <think>
        self.state = "start"
        self.buf = ""           # text received, not yet given out
        self.think_began = False  # some non-space reasoning text was given out
        self.saw_reasoning = opened

    def feed(self, text: str) -> Tuple[str, str]:
        """(reasoning, answer) text that can be given out now."""
        self.buf += text
        reasoning, answer = [], []
        while True:
            if self.state == "start":
                rest = self.buf.lstrip()
                if not rest:
                    return "".join(reasoning), "".join(answer)  # only whitespace so far: wait
                if rest.startswith(OPEN):
                    self.buf, self.state, self.saw_reasoning = rest[len(OPEN):], "think", True
                    continue
                if OPEN.startswith(rest):
                    return "".join(reasoning), "".join(answer)  # could still be <think>: wait
                # No <think>: the reasoning goes on (opened), else the text, its leading space
                # too, is the answer.
                self.state = "think" if self.opened else "answer"
            elif self.state == "think":
                at = self.buf.find(CLOSE)
                if at >= 0:
                    reasoning.append(self._think_text(self.buf[:at], final=True))
                    self.buf, self.state = self.buf[at + len(CLOSE):], "gap"
                    continue
                keep = _held(self.buf, CLOSE)
                body = self.buf[:len(self.buf) - keep]
                # Trailing whitespace waits too: it is dropped if </think> comes next.
                stripped = body.rstrip()
                reasoning.append(self._think_text(stripped, final=False))
                self.buf = body[len(stripped):] + self.buf[len(self.buf) - keep:]
                return "".join(reasoning), "".join(answer)
            elif self.state == "gap":
                rest = self.buf.lstrip()
                if not rest:
                    self.buf = ""
                    return "".join(reasoning), "".join(answer)
                self.buf, self.state = rest, "answer"
            else:  # answer
                answer.append(self.buf)
                self.buf = ""
                return "".join(reasoning), "".join(answer)

    def _think_text(self, text: str, final: bool) -> str:
        """Reasoning text to give out: leading whitespace dropped until some text has gone out,
        trailing whitespace dropped at </think> (final)."""
        if not self.think_began:
            text = text.lstrip()
            self.think_began = bool(text)
        return text.rstrip() if final else text

    def finish(self) -> Tuple[str, str]:
        """The rest once the reply has ended."""
        buf, self.buf = self.buf, ""
        if self.state == "think":
            return self._think_text(buf, final=True), ""
        if self.state == "start":  # a reply that was only whitespace, or a cut-off "<thi"
            return (self._think_text(buf, final=True), "") if self.opened else ("", buf)
        if self.state == "gap":
            return "", ""
        return "", buf


def split(text: str, opened: bool) -> Tuple[str, str, bool]:
    """(reasoning, answer, whether there was reasoning) of a whole reply."""
    s = ReasoningSplitter(opened)
    r1, a1 = s.feed(text)
    r2, a2 = s.finish()
    return r1 + r2, a1 + a2, s.saw_reasoning
