"""Turns bench/run.py's measurements into rows (metric, llmasos, peer, ratio, target, met), prints them,
and writes the markdown table and the PNG chart of ratios against their targets.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import List, Optional

MIB = 1 << 20
DECODE_TARGETS = {"Q4_1": 1.5, "Q8_0": 1.3, "Q4_K": 1.3}
PREFILL_TARGET = {"512": 2.0}
GEMM_TARGET = 0.9
OVERHEAD_TARGET = 0.03
MEMORY_TARGET = 1.3


@dataclass
class Row:
    metric: str
    ours: float
    peer: Optional[float]
    peer_name: str
    unit: str
    ratio: Optional[float]
    higher_is_better: bool        # for the ratio
    target: Optional[float] = None
    met: Optional[bool] = None

    def judge(self, target: Optional[float]) -> "Row":
        self.target = target
        if target is not None and self.ratio is not None:
            self.met = self.ratio >= target if self.higher_is_better else self.ratio < target
        return self

    def target_text(self) -> str:
        if self.target is None:
            return ""
        return (">= " if self.higher_is_better else "< ") + f"{self.target:g}"


def engine_rows(model_type: str, ours: dict, theirs: dict) -> List[Row]:
    """Prefill, decode, load and peak RSS of one model: llmasos against llama-cpp-python."""
    rows, peer = [], "llama-cpp-python"
    for n in ours.get("prefill", {}):
        a, b = ours["prefill"][n], theirs.get("prefill", {}).get(n)
        rows.append(Row(f"{model_type} prefill {n} tokens", a, b, peer, "tok/s", b and a / b, True)
                    .judge(PREFILL_TARGET.get(n)))
    if "decode" in ours:
        a, b = ours["decode"], theirs.get("decode")
        rows.append(Row(f"{model_type} decode", a, b, peer, "tok/s", b and a / b, True)
                    .judge(DECODE_TARGETS.get(model_type)))
    a, b = ours["load_s"], theirs.get("load_s")
    rows.append(Row(f"{model_type} time to load", a, b, peer, "s", b and a / b, False))
    a, b = ours["peak_rss_kib"] / 1024, theirs.get("peak_rss_kib", 0) / 1024 or None
    rows.append(Row(f"{model_type} peak RSS (bench run)", a, b, peer, "MiB", b and a / b, False))
    return rows


def memory_rows(model_type: str, ours: dict, theirs: dict) -> List[Row]:
    """Peak RSS after serving a request that fills the whole context, against llama-cpp-python and
    against the bound file size + KV cache bytes."""
    a = ours["peak_rss_kib"] / 1024
    b = theirs.get("peak_rss_kib", 0) / 1024 or None
    ctx = ours["n_ctx"]
    bound = (ours["file_bytes"] + ours["kv_bytes_ctx"]) / MIB
    return [Row(f"{model_type} peak RSS, {ctx}-token context filled", a, b, "llama-cpp-python", "MiB",
                b and a / b, False),
            Row(f"{model_type} peak RSS / (file + KV of {ctx} tokens)", a, bound, "file+KV", "MiB",
                a / bound, False).judge(MEMORY_TARGET)]


def overhead_row(ours: dict) -> Row:
    f = ours["python_overhead_fraction"]
    return Row("Python overhead per decode step (fraction of wall time)", 100 * f, None, "", "%",
               f, False).judge(OVERHEAD_TARGET)


def kernel_rows(kernels: List[dict]) -> List[Row]:
    """Median time of each kernel case, llmasos against its reference (numpy or torch); the ratio is
    a speed ratio (reference time / llmasos time). A skipped side gives no ratio."""
    by_case = {}
    for k in kernels:
        by_case.setdefault((k["family"], k["case"]), {})[k["side"]] = k["median_s"]
    rows = []
    for (family, case), sides in sorted(by_case.items()):
        peer = "numpy" if family == "gemm_f32" else "torch"
        a, b = sides.get("llmasos"), sides.get(peer)
        label = "F32 matrix product" if family == "gemm_f32" else "attention (vs SDPA)"
        row = Row(f"{label} {case}", a * 1e3 if a else float("nan"), b * 1e3 if b else None, peer, "ms",
                  a and b and b / a, True)
        rows.append(row.judge(GEMM_TARGET if family == "gemm_f32" else None))
    return rows


def fmt(x: Optional[float]) -> str:
    if x is None or x != x:
        return "-"
    return f"{x:.3g}" if abs(x) < 100 else f"{x:.0f}"


def print_rows(rows: List[Row]) -> None:
    print(f"{'metric':58s} {'llmasos':>10s} {'peer':>24s}  {'ratio':>7s}  target  met")
    for r in rows:
        met = "" if r.met is None else ("PASS" if r.met else "FAIL")
        peer = f"{fmt(r.peer)} {r.peer_name}" if r.peer is not None else ""
        print(f"{r.metric:58s} {fmt(r.ours):>10s} {peer:>24s}  {fmt(r.ratio):>7s}  "
              f"{r.target_text():7s} {met}  [{r.unit}]")


def markdown(rows: List[Row], header: str) -> str:
    out = [header, "", "| metric | llmasos | llama-cpp-python / numpy / torch | ratio | target | met |",
           "|---|---|---|---|---|---|"]
    for r in rows:
        peer = f"{fmt(r.peer)} ({r.peer_name})" if r.peer is not None else "-"
        met = "" if r.met is None else ("yes" if r.met else "**no**")
        out.append(f"| {r.metric} [{r.unit}] | {fmt(r.ours)} | {peer} | {fmt(r.ratio)} | "
                   f"{r.target_text()} | {met} |")
    return "\n".join(out) + "\n"


def chart(rows: List[Row], path, title: str) -> None:
    """Two panels of ratio bars: higher is better (speed) and lower is better (time, memory); a
    black tick marks each target, green/red says met or not, grey has no target."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("llmasos / peer, higher is better", [r for r in rows if r.ratio and r.higher_is_better]),
              ("llmasos / peer (or bound), lower is better", [r for r in rows if r.ratio and not r.higher_is_better])]
    height = max(3.0, 0.35 * max(len(p[1]) for p in panels) + 1.5)
    fig, axes = plt.subplots(1, 2, figsize=(15, height))
    for ax, (name, rs) in zip(axes, panels):
        ys = list(range(len(rs)))[::-1]
        colors = ["grey" if r.met is None else ("tab:green" if r.met else "tab:red") for r in rs]
        ax.barh(ys, [r.ratio for r in rs], color=colors)
        for y, r in zip(ys, rs):
            if r.target is not None:
                ax.plot([r.target, r.target], [y - 0.4, y + 0.4], color="black", linewidth=2)
            ax.text(r.ratio, y, f" {r.ratio:.3g}" + (f" ({r.target_text()})" if r.target else ""),
                    va="center", fontsize=7)
        ax.set_yticks(ys, [r.metric for r in rs], fontsize=7)
        ax.axvline(1.0, color="grey", linestyle=":", linewidth=1)
        ax.set_title(name, fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def as_dicts(rows: List[Row]) -> List[dict]:
    return [dict(asdict(r), target_text=r.target_text()) for r in rows]
