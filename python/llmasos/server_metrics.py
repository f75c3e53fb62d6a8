"""Prometheus text-format metrics for the server: counters and histograms kept in process."""
from __future__ import annotations

import threading
from typing import Dict, List, Tuple

TTFT_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]
TOKEN_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0]


class Histogram:
    def __init__(self, buckets: List[float]):
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.sum = 0.0
        self.n = 0

    def observe(self, v: float) -> None:
        i = 0
        while i < len(self.buckets) and v > self.buckets[i]:
            i += 1
        self.counts[i] += 1
        self.sum += v
        self.n += 1

    def lines(self, name: str) -> List[str]:
        out, cum = [], 0
        for b, c in zip(self.buckets, self.counts):
            cum += c
            out.append(f'{name}_bucket{{le="{b}"}} {cum}')
        out.append(f'{name}_bucket{{le="+Inf"}} {self.n}')
        out.append(f"{name}_sum {self.sum}")
        out.append(f"{name}_count {self.n}")
        return out


class Metrics:
    def __init__(self):
        self._mu = threading.Lock()
        self.requests: Dict[Tuple[str, int], int] = {}
        self.prompt_tokens = 0
        self.generation_tokens = 0
        self.ttft = Histogram(TTFT_BUCKETS)
        self.per_token = Histogram(TOKEN_BUCKETS)

    def request_done(self, route: str, status: int) -> None:
        with self._mu:
            self.requests[(route, status)] = self.requests.get((route, status), 0) + 1

    def tokens(self, prompt: int, generated: int) -> None:
        with self._mu:
            self.prompt_tokens += prompt
            self.generation_tokens += generated

    def observe_ttft(self, seconds: float) -> None:
        with self._mu:
            self.ttft.observe(seconds)

    def observe_token(self, seconds: float) -> None:
        with self._mu:
            self.per_token.observe(seconds)

    def render(self, engine_stats: dict) -> str:
        with self._mu:
            lines = ["# HELP llmasos_requests_total Requests by route and HTTP status.",
                     "# TYPE llmasos_requests_total counter"]
            for (route, status), n in sorted(self.requests.items()):
                lines.append(f'llmasos_requests_total{{route="{route}",status="{status}"}} {n}')
            lines += ["# TYPE llmasos_prompt_tokens_total counter",
                      f"llmasos_prompt_tokens_total {self.prompt_tokens}",
                      "# TYPE llmasos_generation_tokens_total counter",
                      f"llmasos_generation_tokens_total {self.generation_tokens}",
                      "# HELP llmasos_time_to_first_token_seconds Time from request to first token.",
                      "# TYPE llmasos_time_to_first_token_seconds histogram"]
            lines += self.ttft.lines("llmasos_time_to_first_token_seconds")
            lines += ["# HELP llmasos_time_per_output_token_seconds Time between output tokens.",
                      "# TYPE llmasos_time_per_output_token_seconds histogram"]
            lines += self.per_token.lines("llmasos_time_per_output_token_seconds")
        gauges = [("queue_length", "waiting"), ("running_sequences", "running"),
                  ("kv_blocks_used", "blocks_used"), ("kv_blocks_free", "blocks_free"),
                  ("kv_blocks_total", "blocks_total"), ("prefix_cache_hit_rate", "prefix_hit_rate"),
                  ("prefix_cache_queries", "prefix_queries"), ("prefix_cache_hits", "prefix_hits"),
                  ("preemptions", "preemptions"),
                  ("prompt_lookup_drafted_tokens", "drafted")]  # tokens taken from drafts (--prompt-lookup)
        for name, key in gauges:
            lines += [f"# TYPE llmasos_{name} gauge", f"llmasos_{name} {engine_stats.get(key, 0)}"]
        return "\n".join(lines) + "\n"
