"""Bounds for rendering chat templates that come from model files: jinja2's sandbox stops attribute
escapes but not work, so a template could loop for hours (nested range(100000) loops), or build a
giant string or number in one operation ('x' * 10**10, 10**10**10), blocking the server's event
loop. Here every `*` / `**` result is size-checked before it is computed, and a render that runs
past a deadline is interrupted (an asynchronous exception in the rendering thread, delivered
between Python bytecodes, which is all a jinja2 render runs)."""
from __future__ import annotations

import ctypes
import math
import threading
import time
from typing import Callable, TypeVar

MAX_ITEMS = 1 << 20        # characters or elements one `*` may produce
MAX_INT_BITS = 1 << 16     # bits of an integer one `**` may produce
RENDER_SECONDS = 2.0       # a real template renders in milliseconds

T = TypeVar("T")


class TemplateLimitError(Exception):
    """A template exceeded one of the bounds above."""


class _Deadline(BaseException):
    """Raised asynchronously in the rendering thread (BaseException: nothing in between catches it)."""


def _too_big_product(a, b) -> bool:
    for seq, n in ((a, b), (b, a)):
        if isinstance(seq, (str, bytes, list, tuple)) and isinstance(n, int):
            return len(seq) * max(n, 0) > MAX_ITEMS
    return False


def _too_big_power(a, b) -> bool:
    if isinstance(a, bool) or isinstance(b, bool) or not (isinstance(a, int) and isinstance(b, int)):
        return False  # floats overflow to inf or raise quickly
    if b <= 0 or abs(a) <= 1:
        return False
    return b * math.log2(abs(a)) > MAX_INT_BITS


def sandbox_class():
    """jinja2's ImmutableSandboxedEnvironment with `*` and `**` checked (jinja2 imported on use)."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class LimitedSandbox(ImmutableSandboxedEnvironment):
        intercepted_binops = frozenset({"*", "**"})

        def call_binop(self, context, operator, left, right):
            if operator == "*" and _too_big_product(left, right):
                raise TemplateLimitError(f"a '*' in the template would make more than {MAX_ITEMS} items")
            if operator == "**" and _too_big_power(left, right):
                raise TemplateLimitError(f"a '**' in the template would make more than {MAX_INT_BITS} bits")
            return super().call_binop(context, operator, left, right)

    return LimitedSandbox


class _Watchdog:
    """One daemon thread that interrupts renders past their deadline (a thread per render cost
    ~0.7 ms, 30x the render of a typical template)."""

    def __init__(self):
        self.cv = threading.Condition()
        self.active = {}  # token -> [deadline, thread id, fired]
        self.thread = None

    def start(self, seconds: float) -> object:
        token = object()
        with self.cv:
            deadline = time.monotonic() + seconds
            earliest = all(e[0] > deadline for e in self.active.values() if not e[2])
            self.active[token] = [deadline, threading.get_ident(), False]
            if self.thread is None or not self.thread.is_alive():  # first use, or after a fork
                self.thread = threading.Thread(target=self._run, name="llmasos-template-deadline", daemon=True)
                self.thread.start()
            elif earliest:
                self.cv.notify()
        return token

    def finish(self, token: object) -> bool:
        """Ends a render's watch; True if its deadline fired (a pending interrupt is taken back)."""
        with self.cv:
            _, tid, fired = self.active.pop(token)
            if fired:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(tid), None)
            return fired

    def _run(self):
        with self.cv:
            while True:
                now = time.monotonic()
                for e in self.active.values():
                    if not e[2] and e[0] <= now:
                        e[2] = True
                        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(e[1]), ctypes.py_object(_Deadline))
                waiting = [e[0] for e in self.active.values() if not e[2]]
                self.cv.wait(min(waiting) - now if waiting else None)


_watchdog = _Watchdog()


def run_with_deadline(fn: Callable[[], T], seconds: float = RENDER_SECONDS) -> T:
    """fn() in this thread, interrupted with TemplateLimitError if it runs past `seconds`."""
    token = _watchdog.start(seconds)
    try:
        try:
            return fn()
        finally:
            _watchdog.finish(token)
    except _Deadline:
        raise TemplateLimitError(f"the template took longer than {seconds:g} s to render") from None
