"""Bounds for rendering chat templates that come from model files: jinja2's sandbox stops attribute
escapes but not work, so a template could loop for hours (nested range(100000) loops), or build a
giant string or number in one operation ('x' * 10**10, 10**10**10), blocking the server's event
loop or exhausting memory. Here the operations that can make a huge value in one step (`*`, `**`,
`%`, `+`, padding / replace / format of strings, and the filters that do those, join and sum among
them) are size-checked before they run, `~` once made; call arguments and namespace values are
bounded, the output is capped, and a render that runs past a deadline is interrupted
(template_deadline.py)."""
from __future__ import annotations

import math
import re

MAX_ITEMS = 1 << 20        # characters or elements one operation may produce or pass on
MAX_OUTPUT = 1 << 22       # characters a render may produce
MAX_INT_BITS = 1 << 16     # bits of an integer one `**` may produce


class TemplateLimitError(Exception):
    """A template exceeded one of the bounds above."""


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


def _too_big(what: str) -> TemplateLimitError:
    return TemplateLimitError(f"{what} in the template would make more than {MAX_ITEMS} items")


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
    # Widths and precisions only: '%-08.3f' (printf) or '{:>08.3}' (str.format), not other digits.
    widths = re.findall(r"%[-+ #0]*(\d*)(?:\.(\d+))?", fmt) + re.findall(r"\{[^{}]*:[^{}\d]*(\d*)(?:\.(\d+))?", fmt)
    if any(d and int(d) > MAX_ITEMS for pair in widths for d in pair):
        raise TemplateLimitError(f"a format width in the template exceeds {MAX_ITEMS}")
    if "*" in fmt or re.search(r"\{[^{}]*:[^{}]*\{", fmt):  # printf '*' or a nested '{:{w}}' width
        for a in (args if isinstance(args, (tuple, list)) else (args,)):
            if isinstance(a, int) and not isinstance(a, bool) and abs(a) > MAX_ITEMS:
                raise TemplateLimitError(f"a format width in the template may exceed {MAX_ITEMS}")


def _check_str_call(s: str, name: str, args) -> None:
    """Padding and replacing methods of str whose result can dwarf their inputs."""
    if name in ("center", "ljust", "rjust", "zfill") and args and isinstance(args[0], int):
        if args[0] > MAX_ITEMS:
            raise _too_big(f"padding (str.{name})")
    elif name == "expandtabs":
        size = args[0] if args and isinstance(args[0], int) else 8
        if size * s.count("\t") > MAX_ITEMS:
            raise _too_big("str.expandtabs")
    elif name == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        n = s.count(args[0]) if args[0] else len(s) + 1
        if len(args) > 2 and isinstance(args[2], int) and args[2] >= 0:
            n = min(n, args[2])
        if len(s) + n * (len(args[1]) - len(args[0])) > MAX_ITEMS:
            raise _too_big("a replace")


def _bounded_filters(orig: dict) -> dict:
    """The filters that can make a result far larger than their inputs in one C call, with the
    size checked first (same signatures as jinja2's, keyword arguments included)."""
    from jinja2.utils import pass_environment, pass_eval_context

    def center(value, width=80):
        _check_str_call(str(value), "center", (width,))
        return orig["center"](value, width)

    def indent(s, width=4, first=False, blank=False):
        w = width if isinstance(width, int) else len(str(width))
        if len(str(s)) + max(w, 0) * (str(s).count("\n") + 1) > MAX_ITEMS:
            raise _too_big("an indent")
        return orig["indent"](s, width, first, blank)

    def format_(value, *args, **kwargs):
        _check_format(value, args + tuple(kwargs.values()))
        return orig["format"](value, *args, **kwargs)

    @pass_eval_context
    def replace(eval_ctx, s, old, new, count=None):
        _check_str_call(str(s), "replace", (str(old), str(new)) + (() if count is None else (count,)))
        return orig["replace"](eval_ctx, s, old, new, count)

    @pass_eval_context
    def join(eval_ctx, value, d="", attribute=None):
        items = list(value)
        if len(items) > MAX_ITEMS or len(str(d)) * len(items) + sum(
                len(x) if isinstance(x, str) else 16 for x in items) > MAX_ITEMS:
            raise _too_big("a join")
        return orig["join"](eval_ctx, items, d, attribute)

    @pass_environment
    def sum_(environment, iterable, attribute=None, start=0):
        items = list(iterable)  # sum(start=[]) of lists grows quadratically inside one call
        if _sized(start) + sum(_sized(x) for x in items) > MAX_ITEMS:
            raise _too_big("a sum")
        return orig["sum"](environment, items, attribute, start)

    @pass_environment
    def wordwrap(environment, s, width=79, break_long_words=True, wrapstring=None, break_on_hyphens=True):
        text = str(s)
        sep = environment.newline_sequence if wrapstring is None else str(wrapstring)
        if isinstance(width, int) and len(text) + (len(text) // max(width, 1) + 1) * len(sep) > MAX_ITEMS:
            raise _too_big("a wordwrap")
        return orig["wordwrap"](environment, s, width, break_long_words, wrapstring, break_on_hyphens)

    return {"center": center, "indent": indent, "format": format_, "replace": replace, "join": join,
            "sum": sum_, "wordwrap": wordwrap}


def sandbox_class():
    """jinja2's ImmutableSandboxedEnvironment with the operations that can make a huge result in
    one step checked first: `*`, `**`, `%`, `+`, `~`, str padding / replace / format methods, and
    the filters that do the same (jinja2 imported on use)."""
    from jinja2.compiler import CodeGenerator
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class BoundedCodeGenerator(CodeGenerator):
        def visit_Concat(self, node, frame):
            # `a ~ b ~ ...`, checked once made: its parts are bounded and their count is fixed by
            # the template's source, so a chain of doubling sets stops at MAX_ITEMS.
            self.write("environment.checked_concat(")
            super().visit_Concat(node, frame)
            self.write(")")

    class LimitedSandbox(ImmutableSandboxedEnvironment):
        intercepted_binops = frozenset({"*", "**", "%", "+"})
        code_generator_class = BoundedCodeGenerator

        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            self.globals["namespace"] = _namespace_class()
            self.filters.update(_bounded_filters(dict(self.filters)))  # a copy: they call the originals

        def checked_concat(self, value):
            _check_sizes((value,), "a '~' result")
            return value

        def call_binop(self, context, operator, left, right):
            if operator == "*" and _too_big_product(left, right):
                raise _too_big("a '*'")
            if operator == "**" and _too_big_power(left, right):
                raise TemplateLimitError(f"a '**' in the template would make more than {MAX_INT_BITS} bits")
            if operator == "%":
                _check_format(left, right)
            if operator == "+" and _sized(left) + _sized(right) > MAX_ITEMS:
                raise _too_big("a '+'")
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


def render_bounded(template, /, **context) -> str:
    """template.render(**context), stopped once the output passes MAX_OUTPUT characters (a loop
    printing a 1 MB string 100000 times would otherwise end in one 100 GB join)."""
    parts, n = [], 0
    for piece in template.generate(**context):
        n += len(piece)
        if n > MAX_OUTPUT:
            raise TemplateLimitError(f"the template's output exceeds {MAX_OUTPUT} characters")
        parts.append(piece)
    return "".join(parts)
