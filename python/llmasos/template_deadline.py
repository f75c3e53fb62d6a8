"""A deadline for code that runs Python bytecode only (a jinja2 render): one watchdog thread raises
an asynchronous exception (PyThreadState_SetAsyncExc) in the thread that overran, delivered
between bytecodes. A thread per render cost ~0.7 ms, 30x the render of a typical template."""
from __future__ import annotations

import ctypes
import threading
import time
from typing import Callable, TypeVar

from .template_sandbox import TemplateLimitError

RENDER_SECONDS = 2.0     # a real template renders in milliseconds
REFIRE_SECONDS = 0.05    # an interrupt delivered while a __del__ runs is swallowed: fire again

T = TypeVar("T")


class _Deadline(BaseException):
    """Raised asynchronously in the overrunning thread (BaseException: nothing in between catches it)."""


def _interrupt(tid: int, exc) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(tid), exc)


class _Watchdog:
    def __init__(self):
        # A C lock, entered with `with` in the watched threads: its __enter__ runs no bytecode, so
        # an interrupt cannot land between taking it and the block that releases it (with a
        # Condition's own Python __enter__ it could, and the lock stayed taken for good).
        self.lock = threading.Lock()
        self.cv = threading.Condition(self.lock)
        self.active = {}  # token -> [next firing time, thread id, fired]
        self.thread = None

    def start(self, token: object, seconds: float) -> None:
        with self.lock:
            deadline = time.monotonic() + seconds
            earliest = all(e[0] > deadline for e in self.active.values())
            self.active[token] = [deadline, threading.get_ident(), False]
            if self.thread is None or not self.thread.is_alive():  # first use, or after a fork
                self.thread = threading.Thread(target=self._run, name="llmasos-template-deadline", daemon=True)
                self.thread.start()
            elif earliest:
                self.cv.notify()

    def finish(self, token: object) -> None:
        """Ends a watch (idempotent); an interrupt set but not yet delivered is taken back."""
        with self.lock:
            e = self.active.pop(token, None)
            if e is not None and e[2]:
                _interrupt(e[1], None)

    def _run(self):
        with self.lock:
            while True:
                now = time.monotonic()
                for e in self.active.values():
                    if e[0] <= now:  # overrun: interrupt, and again every REFIRE_SECONDS until finish()
                        e[0], e[2] = now + REFIRE_SECONDS, True
                        _interrupt(e[1], ctypes.py_object(_Deadline))
                waiting = [e[0] for e in self.active.values()]
                self.cv.wait(min(waiting) - now if waiting else None)


_watchdog = _Watchdog()


def run_with_deadline(fn: Callable[[], T], seconds: float = RENDER_SECONDS) -> T:
    """fn() in this thread, interrupted with TemplateLimitError if it runs past `seconds`."""
    token = object()
    try:
        _watchdog.start(token, seconds)
        try:
            return fn()
        finally:
            _watchdog.finish(token)
    except _Deadline:
        while True:  # a repeat interrupt may land before the watch is ended: end it regardless
            try:
                _watchdog.finish(token)
                break
            except _Deadline:
                continue
        raise TemplateLimitError(f"the template took longer than {seconds:g} s to render") from None
