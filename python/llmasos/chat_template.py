"""Renders a model's chat template (jinja2 text from tokenizer.chat_template) in a sandbox."""
from __future__ import annotations

import datetime
import functools
import json
from typing import Any, Dict, List, Optional

from . import template_deadline, template_sandbox
from ._core_loader import _core

# ChatML, used when a model carries no template of its own.
DEFAULT_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] "
    "+ '<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


# Gemma's turn format, used for a model without a template whose vocabulary has Gemma's turn
# tokens (the Gemma 3 base GGUFs carry none): a system message opens the first turn, followed by
# a blank line; the assistant's turns are the "model" role's.
GEMMA_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' -%}"
    "{%- set prefix = messages[0]['content'] + '\n\n' -%}{%- set turns = messages[1:] -%}"
    "{%- else -%}{%- set prefix = '' -%}{%- set turns = messages -%}{%- endif -%}"
    "{{ bos_token }}"
    "{%- for m in turns -%}"
    "{{ '<start_of_turn>' + ('model' if m['role'] == 'assistant' else m['role']) + '\n' }}"
    "{{ (prefix if loop.first else '') + m['content'] | trim }}{{ '<end_of_turn>\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}"
)


def fallback_template(is_token) -> str:
    """The template for a model that carries none: Gemma's where is_token(text) says the
    vocabulary has its turn tokens, else ChatML."""
    if is_token("<start_of_turn>") and is_token("<end_of_turn>"):
        return GEMMA_TEMPLATE
    return DEFAULT_TEMPLATE


# Marks the end of the last message for continue_final_message: supplementary private-use
# characters, which no template writes of itself and no case or trim filter changes.
_CUT = "\U000F0000\U000F0001\U000F0002"


class ChatTemplateError(_core.LLMasOSError, ValueError):
    """The template failed to render, or the messages are malformed."""


def _raise(message: str):
    raise ChatTemplateError(message)


@functools.lru_cache(maxsize=None)
def _env():
    # jinja2 is imported on first use: a process that never renders a chat keeps its memory.
    # trim_blocks / lstrip_blocks as Hugging Face transformers renders chat templates.
    env = template_sandbox.sandbox_class()(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = _raise
    env.globals["strftime_now"] = lambda fmt: datetime.datetime.now().strftime(fmt)
    env.filters["tojson"] = _tojson
    return env


def _tojson(value, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    """transformers' tojson, which templates (tools, tool calls) are written against: JSON as is,
    not Jinja's HTML-safe form (which writes '<' as \\u003c)."""
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


@functools.lru_cache(maxsize=16)
def _compiled(template: str):
    """Compiling a template takes milliseconds; a server renders the same one for every chat."""
    return _env().from_string(template)


def _text_content(i: int, content: Any) -> str:
    """A message's content as text: a string, or OpenAI's list of content parts, of which only
    {"type": "text", "text": ...} parts are supported (joined by newlines, as vLLM joins them)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and content:
        texts = []
        for j, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                kind = part.get("type") if isinstance(part, dict) else None
                raise ChatTemplateError(f"message {i} content part {j}: only text parts "
                                        f"({{'type': 'text', 'text': ...}}) are supported, got type {kind!r}")
            texts.append(part["text"])
        return "\n".join(texts)
    raise ChatTemplateError(f"message {i} must have a string 'content' or a list of text parts")


def validate_messages(messages: Any) -> List[Dict[str, Any]]:
    """The messages with every content as a string (ChatTemplateError naming what is wrong); an
    assistant turn of tool_calls may have no content."""
    if not isinstance(messages, (list, tuple)) or not messages:
        raise ChatTemplateError("messages must be a non-empty list of {'role', 'content'} dicts")
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise ChatTemplateError(f"message {i} must be a dict with a string 'role'")
        if m.get("content") is None and m["role"] == "assistant" and m.get("tool_calls"):
            content = ""  # a turn of tool calls only (OpenAI's content null)
        else:
            content = _text_content(i, m.get("content"))
        out.append(m if content is m.get("content") else {**m, "content": content})
    return out


def check_template(template: Any) -> str:
    """A template given by the user (vLLM's and llama.cpp's --chat-template): it must compile."""
    from jinja2 import TemplateError

    if not isinstance(template, str) or not template.strip():
        raise ChatTemplateError("a chat template must be non-empty Jinja text")
    try:
        _compiled(template)
    except TemplateError as e:
        raise ChatTemplateError(f"the chat template does not compile: {e}") from e
    return template


def render(template: Optional[str], messages, *, bos_token: str = "", eos_token: str = "",
           add_generation_prompt: bool = True, continue_final_message: bool = False,
           kwargs: Optional[Dict[str, Any]] = None) -> str:
    """The conversation as the template writes it. kwargs (vLLM's chat_template_kwargs, such as
    Qwen3's enable_thinking) are more variables for the template; they may set
    add_generation_prompt too, not messages. continue_final_message (vLLM's): the text ends
    right after the last message, an assistant's, so the model goes on with that reply (a
    prefilled answer) instead of starting a new one."""
    from jinja2 import TemplateError

    msgs = validate_messages(messages)
    variables = {"bos_token": bos_token, "eos_token": eos_token, "add_generation_prompt": add_generation_prompt}
    if kwargs is not None:
        if not isinstance(kwargs, dict) or not all(isinstance(k, str) and k.isidentifier() for k in kwargs):
            raise ChatTemplateError("chat_template_kwargs must be an object whose keys are names")
        if "messages" in kwargs:
            raise ChatTemplateError("chat_template_kwargs cannot set 'messages'")
        variables.update(kwargs)
    if continue_final_message:
        if variables["add_generation_prompt"]:
            raise ChatTemplateError("continue_final_message needs add_generation_prompt false")
        if msgs[-1]["role"] != "assistant":
            raise ChatTemplateError("continue_final_message needs the last message to be the assistant's")
        # The text is cut where a marker written right after the last message's content lands.
        # (Searching for the content itself, as vLLM does, can cut inside the end-of-turn markup:
        # a reply prefilled with "<" or "end" is found again in "<|im_end|>".)
        msgs = msgs[:-1] + [{**msgs[-1], "content": msgs[-1]["content"] + _CUT}]
    try:
        t = _compiled(template or DEFAULT_TEMPLATE)
        text = template_deadline.run_with_deadline(lambda: template_sandbox.render_bounded(
            t, messages=msgs, **variables))
    except ChatTemplateError:
        raise
    except (TemplateError, TypeError, ValueError, KeyError, AttributeError, OverflowError, MemoryError,
            RecursionError, template_sandbox.TemplateLimitError) as e:
        raise ChatTemplateError(f"chat template failed to render: {e}") from e
    if continue_final_message:
        # What the template writes after the content (the end of the turn) would close the reply
        # the model is to go on with. A template that writes the content twice is cut at the last.
        at = text.rfind(_CUT)
        if at < 0:
            raise ChatTemplateError("continue_final_message: the chat template does not write the "
                                    "last message's content as given")
        text = text[:at].replace(_CUT, "")
    return text
