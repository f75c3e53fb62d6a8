"""Chat templates come from model files: rendered in jinja2's sandbox, with work and memory
bounded. A template that loops for hours, builds a giant string or number in one operation or by
doubling, or prints too much raises ChatTemplateError (a 400 from the server, which keeps
serving); ordinary templates are unchanged."""
import subprocess
import sys

import httpx
import pytest

from llmasos import LLM, SamplingParams
from llmasos.chat_template import ChatTemplateError, render
from gguf_factory import make_tiny_llama
from test_server import RunningServer

MSGS = [{"role": "user", "content": "hi"}]
LOOPS = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"


@pytest.mark.parametrize("template,says", [
    (LOOPS, "longer than"),                           # ~10^10 iterations: stopped at the deadline
    ("{{ 'x' * 10**10 }}", r"'\*'"),                  # one multiplication of 10 GB
    ("{% set x = [0] * 10**9 %}{{ x|length }}", r"'\*'"),
    ("{{ 7 * 'y' * 10**7 }}", r"'\*'"),
    ("{{ (10**1000)**1000 }}", r"'\*\*'"),            # a 3.3-million-bit integer
    ("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}", "recursion"),
    # One call that pads, replaces or formats its way to a huge string:
    ('{{ "x"|center(10**8) }}', "padding"),
    ('{{ "x".ljust(10**8) }}', "padding"),
    ('{{ "x"|indent(10**8, true) }}', "indent"),
    ('{{ "ab"|replace("", "x" * 1000000) }}', "replace"),
    ('{{ "ab".replace("", "x" * 1000000) }}', "replace"),
    ('{{ "%100000000s"|format("x") }}', "format width"),
    ('{{ "%*d" % (10**8, 1) }}', "format width"),
    ('{{ "{:>{w}}".format("x", w=10**8) }}', "format width"),
    ('{{ "\t\t".expandtabs(10**7) }}', "expandtabs"),
    # Doubling in a loop or a recursion, and printing a big string many times:
    ('{% set ns = namespace(s="x") %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}', "namespace|'~'"),
    ('{% set ns = namespace(l=[1]) %}{% for i in range(40) %}{% set ns.l = ns.l + ns.l %}{% endfor %}', r"'\+'"),
    ('{% macro f(s, n) %}{{ f(s ~ s, n - 1) if n else s|length }}{% endmacro %}{{ f("x", 40) }}', "call argument|'~'"),
    ('{% set b = "x" * 1000000 %}{% for i in range(100000) %}{{ b }}{% endfor %}', "output exceeds"),
    # Found in review: joins, '~' chains, indent of many lines, keyword widths, sum of lists.
    ('{{ range(300)|join("x" * 1048576) }}', "join"),
    ('{% set a = "x" * 1000000 %}{% set b = a ~ a %}{% set c = b ~ b %}{{ c|length }}', "'~'"),
    ('{{ ("x\n" * 300)|indent(1000000) }}', "indent"),
    ('{{ "x"|center(width=50000000) }}', "padding"),
    ('{{ ([[1] * 1000] * 2000)|sum(start=[]) }}', "sum"),
    ('{{ ("x " * 1000)|wordwrap(1, wrapstring="y" * 100000) }}', "wordwrap"),
])
def test_hostile_templates_raise(template, says):
    with pytest.raises(ChatTemplateError, match=says):
        render(template, MSGS)
    # The thread that was interrupted renders normally afterwards.
    assert render(None, MSGS).endswith("<|im_start|>assistant\n")


def test_ordinary_operations_still_render():
    t = "{{ 'ab' * 3 }}|{{ 3 * [1] }}|{{ 2**100 }}|{{ 2.5 * 2 }}|{% for m in messages %}{{ m['content'] }}{% endfor %}"
    assert render(t, MSGS) == f"ababab|[1, 1, 1]|{2**100}|5.0|hi"
    t = ('{{ "ab"|center(6) }}|{{ "%03d" % 7 }}|{{ "%5s"|format("x") }}|{{ "{:>3}".format("y") }}|'
         '{{ "a\nb"|indent(2, true) }}|{{ "hello"|replace("l", "L") }}|{{ "x".rjust(2) }}|{{ [1] + [2] }}|{{ "{}".format(10**9) }}|'
         '{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}{% endfor %}{{ ns.n }}')
    assert render(t, MSGS) == "  ab  |007|    x|  y|  a\n  b|heLLo| x|[1, 2]|1000000000|1"
    t = ('{{ "a" ~ "b" ~ 3 }}|{{ [1, 2]|join(",") }}|{{ [[1], [2]]|sum(start=[]) }}|{{ "aa bb"|wordwrap(2) }}|'
         '{{ "x"|center(width=3) }}|{{ "Cutoff 20231231: %s" % "x" }}|{{ "{0:>4}".format("ab") }}')
    assert render(t, MSGS) == "ab3|1,2|[1, 2]|aa\nbb| x |Cutoff 20231231: x|  ab"


def test_deadline_under_contention():
    """Renders that end right at their deadline, from several threads at once: each call either
    returns or raises TemplateLimitError, nothing stray reaches the code after it, and the
    watchdog is left with no watch and no lock held (its first version could deadlock here)."""
    import threading
    import time
    from llmasos.template_deadline import _watchdog, run_with_deadline
    from llmasos.template_sandbox import TemplateLimitError

    def busy():
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < 0.0005:
            pass

    errors = []

    def worker():
        try:
            for _ in range(500):
                try:
                    run_with_deadline(busy, seconds=0.0005)
                except TemplateLimitError:
                    pass
                for _ in range(200):  # a stray interrupt would land here
                    pass
        except BaseException as e:  # noqa: B036 (what the test looks for)
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads) and not errors
    assert not _watchdog.active and _watchdog.lock.acquire(timeout=10)
    _watchdog.lock.release()


def test_model_with_a_looping_template(tmp_path):
    """The model loads; its chat raises a clear error; the server answers that chat with a 400 and
    goes on serving completions and other chats."""
    path = str(make_tiny_llama(tmp_path / "loop.gguf", metadata={"tokenizer.chat_template": LOOPS}).path)
    with LLM.from_pretrained(path, threads=1) as llm:
        with pytest.raises(ChatTemplateError, match="longer than"):
            llm.chat(MSGS, SamplingParams(max_tokens=2))
        assert llm.generate("hi", SamplingParams(max_tokens=2, ignore_eos=True))[0].token_ids
    server = RunningServer(path)
    try:
        r = httpx.post(server.base + "/v1/chat/completions", json={"messages": MSGS, "max_tokens": 2}, timeout=60)
        assert r.status_code == 400 and "longer than" in r.json()["error"]["message"]
        r = httpx.post(server.base + "/v1/completions", json={"prompt": "hi", "max_tokens": 2}, timeout=60)
        assert r.status_code == 200 and r.json()["choices"][0]["finish_reason"]
        assert httpx.get(server.base + "/health", timeout=10).json() == {"status": "ok"}
    finally:
        server.stop()


# A Qwen3-like switch: enable_thinking false writes an empty think block after the turn header.
THINK = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
         "{% if add_generation_prompt %}<|im_start|>assistant\n"
         "{% if enable_thinking is defined and not enable_thinking %}<think>\n\n</think>\n\n{% endif %}{% endif %}")
CONV = MSGS + [{"role": "assistant", "content": "The answer is"}]


def test_template_kwargs_and_continue_final_message():
    """vLLM's chat_template_kwargs (more template variables) and continue_final_message (the
    text ends right after the assistant's last message, for the model to go on with it)."""
    base = render(THINK, MSGS)
    assert base == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    assert render(THINK, MSGS, kwargs={"enable_thinking": False}) == base + "<think>\n\n</think>\n\n"
    assert render(THINK, MSGS, kwargs={"enable_thinking": True}) == base
    assert render(THINK, MSGS, kwargs={"add_generation_prompt": False}) == "<|im_start|>user\nhi<|im_end|>\n"
    assert render(THINK, CONV, add_generation_prompt=False, continue_final_message=True) == \
        "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nThe answer is"
    # A prefilled reply the end-of-turn markup also holds is cut after the reply, not in the markup.
    for prefill in ["<", "im", "end", ">", "\n", "<|im_end|>"]:
        text = render(THINK, MSGS + [{"role": "assistant", "content": prefill}], add_generation_prompt=False,
                      continue_final_message=True)
        assert text == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n" + prefill
    # A template that trims the content (Gemma's) ends where its trimmed text does; a filter that
    # changes the content (upper) still marks the place.
    from llmasos.chat_template import GEMMA_TEMPLATE
    padded = MSGS + [{"role": "assistant", "content": " Sure"}]
    assert render(GEMMA_TEMPLATE, padded, add_generation_prompt=False, continue_final_message=True).endswith(
        "<start_of_turn>model\nSure")
    assert render("{% for m in messages %}[{{ m['content']|upper }}]{% endfor %}", CONV, add_generation_prompt=False,
                  continue_final_message=True) == "[HI][THE ANSWER IS"


@pytest.mark.parametrize("template,messages,kw,says", [
    (THINK, MSGS, dict(kwargs={"messages": []}), "cannot set 'messages'"),
    (THINK, MSGS, dict(kwargs={"not a name": 1}), "keys are names"),
    (THINK, MSGS, dict(kwargs=[1]), "must be an object"),
    (THINK, CONV, dict(continue_final_message=True), "add_generation_prompt false"),
    (THINK, MSGS, dict(add_generation_prompt=False, continue_final_message=True), "assistant's"),
    ("{% for m in messages %}{{ m['content'][:3] }}{% endfor %}", CONV,
     dict(add_generation_prompt=False, continue_final_message=True), "as given"),
])
def test_bad_render_options_are_clear(template, messages, kw, says):
    with pytest.raises(ChatTemplateError, match=says):
        render(template, messages, **kw)


def test_given_chat_template(tmp_path):
    """LLM.from_pretrained(chat_template=...) and `llmasos serve --chat-template FILE` render with
    the given template; the chat route and /tokenize take vLLM's add_generation_prompt,
    continue_final_message and chat_template_kwargs; a bad one is a clear error (a 400 naming
    the field, or a refusal before the model loads)."""
    from llmasos.chat_template import check_template
    path = str(make_tiny_llama(tmp_path / "tiny.gguf").path)
    with pytest.raises(ChatTemplateError, match="does not compile"):
        LLM.from_pretrained(path, chat_template="{% for %}")
    with pytest.raises(ChatTemplateError, match="non-empty"):
        check_template("  ")
    with LLM.from_pretrained(path, threads=1, chat_template=THINK) as llm:
        assert llm.chat_template == THINK
        no_think = llm.chat_prompt_ids(MSGS, chat_template_kwargs={"enable_thinking": False})
        assert no_think == llm.tokenize(render(THINK, MSGS, kwargs={"enable_thinking": False}), special=True)
        cont = llm.chat_prompt_ids(CONV, add_generation_prompt=False, continue_final_message=True)
        assert llm.detokenize(cont, special=True).endswith("<|im_start|>assistant\nThe answer is")
        assert llm.chat_prompt_ids(CONV, continue_final_message=True) == cont  # no generation prompt then
        out = llm.chat(CONV, SamplingParams(max_tokens=3, ignore_eos=True), add_generation_prompt=False,
                       continue_final_message=True)
        assert out.prompt_token_ids == cont
    with LLM.from_pretrained(path, threads=1) as llm:  # the model's own
        assert "enable_thinking" not in llm.chat_template
        own = llm.chat_prompt_ids(MSGS, chat_template_kwargs={"enable_thinking": False})
        assert own == llm.tokenize(render(THINK, MSGS), special=True)
    tfile = tmp_path / "think.jinja"
    tfile.write_text(THINK)
    server = RunningServer(path, "--chat-template", str(tfile))
    try:
        def post(route, **body):
            return httpx.post(server.base + route, json=body, timeout=60)
        r = post("/tokenize", messages=MSGS, chat_template_kwargs={"enable_thinking": False})
        assert r.status_code == 200 and r.json()["tokens"] == no_think
        r = post("/tokenize", messages=CONV, add_generation_prompt=False, continue_final_message=True)
        assert r.json()["tokens"] == cont
        r = post("/v1/chat/completions", messages=CONV, add_generation_prompt=False, continue_final_message=True,
                 max_tokens=2, ignore_eos=True)
        assert r.status_code == 200 and r.json()["usage"]["prompt_tokens"] == len(cont)
        r = post("/v1/chat/completions", messages=MSGS, chat_template_kwargs={"enable_thinking": False}, max_tokens=1)
        assert r.status_code == 200 and r.json()["usage"]["prompt_tokens"] == len(no_think)
        for body, param in [(dict(chat_template_kwargs="x"), "chat_template_kwargs"),
                            (dict(chat_template_kwargs={"messages": 1}), "chat_template_kwargs"),
                            (dict(continue_final_message=True), "continue_final_message"),
                            (dict(add_generation_prompt="yes"), "add_generation_prompt")]:
            for route in ("/v1/chat/completions", "/tokenize"):
                r = post(route, messages=MSGS, max_tokens=1, **body)
                assert r.status_code == 400 and r.json()["error"]["param"] == param, (route, body, r.text)
    finally:
        server.stop()
    for value, says in [(str(tmp_path / "missing.jinja"), "no such file"), ("{% for %}", "does not compile")]:
        p = subprocess.run([sys.executable, "-m", "llmasos", "serve", path, "--chat-template", value],
                           capture_output=True, text=True, timeout=120)
        assert p.returncode != 0 and says in p.stderr, p.stderr
