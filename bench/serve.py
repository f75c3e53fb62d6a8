"""Serving throughput and time-to-first-token of `llmasos serve` against llama-cpp-python's own
server (`python -m llama_cpp.server`), same GGUF, same threads, one run, loopback only.

    python bench/serve.py [--model NAME_OR_PATH] [--clients 1 4 16 64] [--requests-per-client 2]

For each concurrency level every client sends streaming completions (greedy, --max-tokens each)
one after another; reported: generated tokens/s over the whole level, p50/p99 TTFT, and ratios.
llama-cpp-python's server needs its extra's packages: pip install "llama-cpp-python[server]".
"""
from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import httpx

from llmasos import store

PROMPT_WORDS = ["river", "castle", "engine", "garden", "planet", "market", "winter", "library"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd, base, health):
    """Starts a server and waits for its health route; a server that exits says why (the end of
    its stderr), e.g. llama_cpp.server without its extra's packages."""
    err = tempfile.TemporaryFile()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.time() + 180
    while time.time() < deadline:
        if proc.poll() is not None:
            err.seek(0)
            tail = err.read().decode(errors="replace").strip().splitlines()[-3:]
            raise RuntimeError(f"{' '.join(cmd[:4])} exited with {proc.returncode}: " + " | ".join(tail))
        try:
            with urllib.request.urlopen(base + health, timeout=1):
                return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("server did not start")


def one_request(base, i, max_tokens):
    body = {"prompt": f"Write about the {PROMPT_WORDS[i % len(PROMPT_WORDS)]} number {i}:",
            "max_tokens": max_tokens, "temperature": 0, "stream": True}
    t0 = time.perf_counter()
    ttft, n = None, 0
    with httpx.stream("POST", base + "/v1/completions", json=body, timeout=600) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk["choices"][0].get("text"):
                n += 1
                if ttft is None:
                    ttft = time.perf_counter() - t0
    return ttft if ttft is not None else time.perf_counter() - t0, n


def level(base, clients, per_client, max_tokens):
    errors = []

    def client(c):
        out = []
        for k in range(per_client):
            try:
                out.append(one_request(base, c * per_client + k, max_tokens))
            except httpx.HTTPError as e:  # counted and reported, not fatal to the level
                errors.append(repr(e))
        return out
    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as ex:
        results = [r for rs in ex.map(client, range(clients)) for r in rs]
    wall = time.perf_counter() - t0
    if not results:
        return {"tok_s": 0.0, "ttft_p50": float("nan"), "ttft_p99": float("nan"), "errors": len(errors)}
    ttfts = sorted(r[0] for r in results)
    tokens = sum(r[1] for r in results)  # streamed text chunks ~ tokens
    p99 = ttfts[min(len(ttfts) - 1, int(round(0.99 * (len(ttfts) - 1))))]
    return {"tok_s": tokens / wall, "ttft_p50": statistics.median(ttfts), "ttft_p99": p99,
            "errors": len(errors)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=store.DEFAULT_MODEL)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16, 64])
    ap.add_argument("--requests-per-client", type=int, default=2)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--servers", nargs="+", default=["llmasos", "llama-cpp-python"])
    a = ap.parse_args()
    path = str(store.resolve(a.model))
    servers = {}
    p1, p2 = free_port(), free_port()
    servers["llmasos"] = (f"http://127.0.0.1:{p1}", [sys.executable, "-m", "llmasos", "serve", path, "--port", str(p1),
                          "--threads", str(a.threads), "--n-ctx", "2048"], "/health")
    servers["llama-cpp-python"] = (f"http://127.0.0.1:{p2}", [sys.executable, "-m", "llama_cpp.server", "--model", path,
                                   "--port", str(p2), "--n_threads", str(a.threads), "--n_ctx", "2048",
                                   "--interrupt_requests", "False"], "/v1/models")  # queue concurrent requests, do not drop them
    results = {}
    for name, (base, cmd, health) in servers.items():
        if name not in a.servers:
            continue
        proc = start(cmd, base, health)
        try:
            one_request(base, 0, 4)  # warm up
            results[name] = {c: level(base, c, a.requests_per_client, a.max_tokens) for c in a.clients}
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print(f"{'clients':>8} {'server':>18} {'tok/s':>8} {'TTFT p50':>9} {'TTFT p99':>9} {'errors':>6}")
    for c in a.clients:
        for name in results:
            r = results[name][c]
            print(f"{c:>8} {name:>18} {r['tok_s']:8.1f} {r['ttft_p50']:9.3f} {r['ttft_p99']:9.3f} {r['errors']:>6}")
        if len(results) == 2:
            ours, theirs = results["llmasos"][c], results["llama-cpp-python"][c]
            print(f"{c:>8} {'ratio':>18} {ours['tok_s'] / theirs['tok_s']:7.2f}x "
                  f"{ours['ttft_p50'] / theirs['ttft_p50']:8.2f}x {ours['ttft_p99'] / theirs['ttft_p99']:8.2f}x")


if __name__ == "__main__":
    main()
