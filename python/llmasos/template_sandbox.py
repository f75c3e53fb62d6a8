"""Bounds for rendering chat templates that come from model files: jinja2's sandbox stops attribute
escapes but not work, so a template could loop for hours (nested range(100000) loops), or build a
giant string or number in one operation ('x' * 10**10, 10**10**10), blocking the server's event
loop or exhausting memory. Here the operations that can make a huge value in one step (`*`, `**`,
`%`, `+`, padding / replace / format of strings, and the filters that do those) are size-checked
before they run, call arguments and namespace values are bounded, the output is capped, and a
render that runs past a deadline is interrupted (an asynchronous exception in the rendering
thread, delivered between Python bytecodes, which is all a jinja2 render runs)."""
from __future__ import annotations

import ctypes
import math
import re
import threading
import time
from typing import Callable, TypeVar

MAX_ITEMS = 1 << 20        # characters or elements one operation may produce or pass on
MAX_OUTPUT = 1 << 22       # characters a render may produce
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


def _sized(v) -> int:
    return len(v) if isinstance(v, (str, bytes, list, tuple, dict)) else 0


def _check_sizes(values, what: str) -> None:
    if any(_sized(v) > MAX_ITEMS for v in values):
        raise TemplateLimitError(f"{what} in the template holds more than {MAX_ITEMS} items")


def _check_format(fmt, args) -> None:
    """A printf or str.format pattern pads to at most MAX_ITEMS: no literal width beyond it, and
    no number argument beyond it where a width may come from an argument ('*' or '{:{w}}')."""
    if not isinstance(fmt, str):
        return
    if any(int(d) > MAX_ITEMS for d in re.findall(r"\d{7,}", fmt)):
        raise TemplateLimitError(f"a format width in the template exceeds {MAX_ITEMS}")
    if "*" in fmt or re.search(r"\{[^{}]*:[^{}]*\{", fmt):  # printf '*' or a nested '{:{w}}' width
        for a in (args if isinstance(args, (tuple, list)) else (args,)):
            if isinstance(a, int) and not isinstance(a, bool) and abs(a) > MAX_ITEMS:
                raise TemplateLimitError(f"a format width in the template may exceed {MAX_ITEMS}")


def _check_str_call(s: str, name: str, args) -> None:
    """Padding and replacing methods of str whose result can dwarf their inputs."""
    if name in ("center", "ljust", "rjust", "zfill") and args and isinstance(args[0], int):
        if args[0] > MAX_ITEMS:
            raise TemplateLimitError(f"padding (str.{name}) in the template would make more than {MAX_ITEMS} items")
    elif name == "expandtabs":
        size = args[0] if args and isinstance(args[0], int) else 8
        if size * s.count("\t") > MAX_ITEMS:
            raise TemplateLimitError(f"str.expandtabs in the template would make more than {MAX_ITEMS} items")
    elif name == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        n = s.count(args[0]) if args[0] else len(s) + 1
        if len(args) > 2 and isinstance(args[2], int) and args[2] >= 0:
            n = min(n, args[2])
        if len(s) + n * (len(args[1]) - len(args[0])) > MAX_ITEMS:
            raise TemplateLimitError(f"a replace in the template would make more than {MAX_ITEMS} items")


def sandbox_class():
    """jinja2's ImmutableSandboxedEnvironment with the operations that can make a huge result in
    one step checked first: `*`, `**`, `%`, str padding / replace / format methods, and the
    center, indent, format and replace filters (jinja2 imported on use)."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class LimitedSandbox(ImmutableSandboxedEnvironment):
        intercepted_binops = frozenset({"*", "**", "%", "+"})

        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            self.globals["namespace"] = _namespace_class()
            for name, check in (("center", lambda v, w=80, *r, **k: _check_str_call(str(v), "center", (w,))),
                                ("indent", lambda v, w=4, *r, **k: _check_str_call("", "ljust", (w if isinstance(w, int) else len(str(w)),))),
                                ("format", lambda v, *a, **k: _check_format(v, a)),
                                ("replace", lambda v, old="", new="", count=None, *r, **k: _check_str_call(
                                    str(v), "replace", (old, new) + ((count,) if count is not None else ())))):
                self.filters[name] = _checked(self.filters[name], check)

        def call_binop(self, context, operator, left, right):
            if operator == "*" and _too_big_product(left, right):
                raise TemplateLimitError(f"a '*' in the template would make more than {MAX_ITEMS} items")
            if operator == "**" and _too_big_power(left, right):
                raise TemplateLimitError(f"a '**' in the template would make more than {MAX_INT_BITS} bits")
            if operator == "%":
                _check_format(left, right)
            if operator == "+" and _sized(left) + _sized(right) > MAX_ITEMS:
                raise TemplateLimitError(f"a '+' in the template would make more than {MAX_ITEMS} items")
            return super().call_binop(context, operator, left, right)

        def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 (jinja2's own signature)
            # Every call (macros included) passes values of bounded size, so a macro calling
            # itself with a doubled string stops at MAX_ITEMS.
            _check_sizes(args, "a call argument")
            _check_sizes(kwargs.values(), "a call argument")
            owner = getattr(__obj, "__self__", None)
            if isinstance(owner, str):
                _check_str_call(owner, getattr(__obj, "__name__", ""), args)
            return super().call(__context, __obj, *args, **kwargs)

        def wrap_str_format(self, value):
            wrapped = super().wrap_str_format(value)
            if wrapped is None:
                return None

            def checked(*args, **kwargs):
                _check_format(value.__self__, tuple(args) + tuple(kwargs.values()))
                return wrapped(*args, **kwargs)
            return checked

    return LimitedSandbox


def _namespace_class():
    """jinja2's namespace() with each assigned value's size bounded (a loop that doubles a
    namespace string would otherwise grow it past memory within the deadline)."""
    from jinja2.utils import Namespace

    class BoundedNamespace(Namespace):
        def __setitem__(self, name, value):
            _check_sizes((value,), "a namespace value")
            super().__setitem__(name, value)

    return BoundedNamespace


def render_bounded(template, **context) -> str:
    """template.render(**context), stopped once the output passes MAX_OUTPUT characters (a loop
    printing a 1 MB string 100000 times would otherwise end in one 100 GB join)."""
    parts, n = [], 0
    for piece in template.generate(**context):
        n += len(piece)
        if n > MAX_OUTPUT:
            raise TemplateLimitError(f"the template's output exceeds {MAX_OUTPUT} characters")
        parts.append(piece)
    return "".join(parts)


def _checked(fn, check):
    """The filter `fn` with `check(value, *args, **kwargs)` run first (jinja2 filter decorators,
    such as pass_eval_context, are kept by copying the wrapped function's attributes)."""
    def run(*args, **kwargs):
        check(*_user_args(fn, args), **kwargs)
        return fn(*args, **kwargs)
    run.__dict__.update(getattr(fn, "__dict__", {}))
    for attr in ("jinja_pass_arg",):
        if hasattr(fn, attr):
            setattr(run, attr, getattr(fn, attr))
    return run


def _user_args(fn, args):
    """The arguments after the context / eval-context / environment that jinja2 passes first."""
    return args[1:] if getattr(fn, "jinja_pass_arg", None) is not None else args


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
