"""The `llmasos` command line: run a prompt, list models, show runtime information."""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import List, Optional

from . import store


def _positive_int(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {s!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {s!r}")
    return v


def _non_negative_float(s: str) -> float:
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {s!r}") from None
    if not v >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {s!r}")
    return v


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="llmasos", description="Run large language models locally.")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="generate a completion of a prompt")
    run.add_argument("prompt", help="the text to complete")
    run.add_argument("--model", default=store.DEFAULT_MODEL,
                     help=f"model name or .gguf path (default: {store.DEFAULT_MODEL})")
    run.add_argument("--max-tokens", type=_positive_int, default=128)
    run.add_argument("--temperature", type=_non_negative_float, default=0.0)
    run.add_argument("--seed", type=int, default=None)
    run.add_argument("--threads", type=_positive_int, default=None)
    run.add_argument("--prompt-lookup", type=int, default=0, metavar="K",
                     help="check up to K tokens drafted from the context per forward pass (same output; "
                          "faster where the text repeats its context)")
    run.add_argument("--chat", action="store_true",
                     help="send the prompt as a user message through the chat template")
    run.add_argument("--json", action="store_true",
                     help="JSON mode: the output is one JSON object (generation stops when it closes)")
    run.add_argument("--json-schema", metavar="FILE", default=None,
                     help="structured output: compact JSON that the JSON schema in FILE accepts")
    run.add_argument("--grammar-file", metavar="FILE", default=None,
                     help="the output is text that the GBNF grammar in FILE derives (llama.cpp's format)")

    q = sub.add_parser("quantize", help="re-quantize a GGUF file to another weight type")
    q.add_argument("input", help="the GGUF file to read (any readable type)")
    q.add_argument("output", help="the GGUF file to write")
    q.add_argument("type", help="Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K, F16, BF16 or F32")
    q.add_argument("--threads", type=_positive_int, default=None)

    sv = sub.add_parser("serve", help="serve a model over an OpenAI-compatible HTTP API")
    sv.add_argument("model", nargs="?", default=store.DEFAULT_MODEL, help="model name or .gguf path")
    sv.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    sv.add_argument("--port", type=_positive_int, default=8000)
    sv.add_argument("--api-key", default=None, help="require 'Authorization: Bearer KEY' (or 'X-Api-Key: KEY') on all routes but "
                                                           "/health and /metrics")
    sv.add_argument("--n-ctx", "--max-model-len", "--ctx-size", dest="n_ctx", type=_positive_int, default=None,
                    help="context size per sequence (vLLM's --max-model-len, llama.cpp's --ctx-size)")
    sv.add_argument("--served-model-name", "--alias", dest="served_model_name", default=None, metavar="NAME",
                    help="the model id the API reports and requests name (default: the model's name or file)")
    sv.add_argument("--threads", type=_positive_int, default=None)
    sv.add_argument("--max-n", type=_positive_int, default=8, help="cap on a request's n")
    sv.add_argument("--max-batch-tokens", "--max-num-batched-tokens", dest="max_batch_tokens", type=_positive_int,
                    default=512, help="tokens per engine step (vLLM's --max-num-batched-tokens)")
    sv.add_argument("--max-seqs", "--max-num-seqs", dest="max_seqs", type=_positive_int, default=64,
                    help="sequences running at once (vLLM's --max-num-seqs)")
    sv.add_argument("--kv-cache-bytes", type=_positive_int, default=None, help="KV pool size")
    sv.add_argument("--kv-cache-type", choices=["f16", "bf16", "f32", "q8_0"], default="f16",
                    help="element type of cached keys and values (default f16; q8_0: 8-bit, about "
                         "half the memory, like llama.cpp's --cache-type-k/v q8_0)")
    sv.add_argument("--chat-template", default=None, metavar="FILE_OR_JINJA",
                    help="chat template to use instead of the model's own: a file, or the Jinja text")
    sv.add_argument("--prompt-lookup", type=int, default=0, metavar="K",
                    help="while at most 4 sequences run, each also feeds up to K tokens drafted from "
                         "its context per step (same output; faster where text repeats its context)")
    sv.add_argument("--reasoning-format", choices=["auto", "none"], default="auto",
                    help="auto (default): a thinking model's <think> text goes to reasoning_content; "
                         "none: it stays in content")

    sub.add_parser("models", help="list the available model names and what is cached")
    sub.add_parser("info", help="print runtime information (ISA level, threads) as JSON")
    return p


def _chat_template_arg(value: Optional[str]) -> Optional[str]:
    """--chat-template, as vLLM's: the path of a file holding the template, or the template."""
    if value is None:
        return None
    if os.path.isfile(value):
        with open(value, encoding="utf-8") as f:
            return f.read()
    if "{" not in value:  # no Jinja in it: meant as a file
        raise ValueError(f"--chat-template: no such file {value!r}")
    return value


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    from . import LLMasOSError, runtime_info
    try:
        if args.command == "models":
            for m in store.list_models():
                state = f"cached at {m['path']}" if m["cached"] else "not cached (fetched on first use)"
                print(f"{m['name']:28s} {m['description']}  [{state}]")
            return 0
        if args.command == "quantize":
            import os
            from ._core_loader import _core
            if os.path.abspath(args.input) == os.path.abspath(args.output):
                raise ValueError("the output must be a different file from the input")
            src = store.resolve(args.input)
            r = _core.quantize_gguf(str(src), args.output, args.type, args.threads or 0)
            print(f"{args.output}: {r['quantized']} of {r['tensors']} tensors quantized to {args.type.upper()}"
                  f" ({r['fallback']} kept at a finer type whose block fits their rows); "
                  f"{r['in_bytes'] / 1e6:.1f} MB -> {r['out_bytes'] / 1e6:.1f} MB")
            return 0
        if args.command == "serve":
            from .server import serve
            serve(args.model, host=args.host, port=args.port, api_key=args.api_key, n_ctx=args.n_ctx,
                  threads=args.threads, max_n=args.max_n, max_batch_tokens=args.max_batch_tokens,
                  max_seqs=args.max_seqs, kv_cache_bytes=args.kv_cache_bytes or 0,
                  kv_cache_type=args.kv_cache_type, chat_template=_chat_template_arg(args.chat_template),
                  reasoning_format=args.reasoning_format, prompt_lookup=args.prompt_lookup,
                  served_model_name=args.served_model_name)
            return 0
        if args.command == "info":
            print(json.dumps(runtime_info(), indent=2))
            return 0
        from .llm import LLM
        from .sampling import SamplingParams
        schema = None
        if args.json_schema is not None:  # compiled once, and refused before the model loads
            from .json_schema import compile_schema
            with open(args.json_schema, encoding="utf-8") as f:
                try:
                    schema = json.load(f)
                except ValueError as e:
                    raise ValueError(f"{args.json_schema}: not JSON ({e})") from None
            schema = compile_schema(schema)
        grammar = None
        if args.grammar_file is not None:  # likewise
            from .gbnf import compile_grammar
            with open(args.grammar_file, encoding="utf-8") as f:
                grammar = compile_grammar(f.read())
        params = SamplingParams(max_tokens=args.max_tokens, temperature=args.temperature,
                                seed=args.seed, json_object=args.json, json_schema=schema, grammar=grammar)
        with LLM.from_pretrained(args.model, threads=args.threads, prompt_lookup=args.prompt_lookup) as llm:
            if args.chat:
                pieces = llm.chat([{"role": "user", "content": args.prompt}], params).text
                sys.stdout.write(pieces)
            else:
                sys.stdout.write(args.prompt)
                for piece in llm.stream(args.prompt, params):
                    sys.stdout.write(piece)
                    sys.stdout.flush()
            sys.stdout.write("\n")
        return 0
    except (LLMasOSError, ValueError, OSError) as e:
        print(f"llmasos: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
