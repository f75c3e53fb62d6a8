"""The benchmark harness: llmasos against llama-cpp-python on the same GGUF files and thread count
(prefill 128/512 tokens, decode 128 tokens, time to load, peak RSS) for the default model in Q4_1,
Q8_0 and Q4_K, plus kernel micro-benchmarks (bench/test_kernels_bench.py, pytest-benchmark).
Writes bench/results/<date>-<host>.json, .md and .png and prints each ratio against its target.

    python bench/run.py [--threads 2] [--reps 3] [--quick] [--out bench/results]
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bench_report as report
import bench_setup

HERE = Path(__file__).resolve().parent
ENGINES = ["llmasos", "llama-cpp-python"]
OVERHEAD_METHOD = (
    "Python overhead per decode step: during the decode run (generate() of one request on the engine), "
    "LLM._engine is wrapped so every Engine.step() call (the one entry into C++ per step; the GIL "
    "is released inside) is timed with perf_counter; overhead = (generate wall time - time inside "
    "step()) / generate wall time. It counts all the Python of generate(): add_request, the step "
    "loop, detokenizing and stop-string matching.")
MEMORY_METHOD = (
    "Peak RSS: VmHWM of the measuring process (the Python interpreter and imports included). The "
    "memory rows come from a process of their own that loads the model with n_ctx=2048 as `llmasos "
    "serve --n-ctx 2048` does (llama-cpp-python: Llama(n_ctx=2048)) and serves one request that "
    "fills the whole context (1920 prompt + 128 generated tokens). KV bytes: llmasos Engine.stats() "
    "kv_cache_bytes per pool position x 2048.")


def child_env() -> dict:
    """The environment of every subprocess: this one's, with LLMASOS_DEV_CORE and PYTHONPATH made
    absolute (a child may run elsewhere) and bench/ importable."""
    env = dict(os.environ)
    if env.get("LLMASOS_DEV_CORE"):
        env["LLMASOS_DEV_CORE"] = os.path.abspath(env["LLMASOS_DEV_CORE"])
    paths = [os.path.abspath(p) for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(paths + [str(HERE)])
    return env


def run_worker(env, engine, model, args, *extra) -> dict:
    cmd = [sys.executable, str(HERE / "engine_worker.py"), engine, str(model),
           "--threads", str(args.threads), *extra]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        tail = "\n".join(r.stderr.strip().splitlines()[-8:])
        print(f"  {engine} failed (exit {r.returncode}):\n{tail}", flush=True)
        return {"error": tail, "exit": r.returncode}
    return json.loads(r.stdout.strip().splitlines()[-1])


def median_of(runs):
    """Median of every numeric field (and of each prefill length) over the successful runs."""
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return {"error": runs[0]["error"] if runs else "no run"}
    out = dict(ok[0])
    for key, v in ok[0].items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out[key] = statistics.median(r[key] for r in ok)
    out["prefill"] = {n: statistics.median(r["prefill"][n] for r in ok) for n in ok[0].get("prefill", {})}
    out["runs"] = len(ok)
    return out


def bench_engines(env, models, args, sizes):
    """Each engine x model in its own process, per repetition, alternating which engine goes first
    so that a noisy neighbour hits both alike."""
    results = {}
    for mtype, path in models.items():
        runs = {e: [] for e in ENGINES}
        for rep in range(args.reps):
            for e in (ENGINES if rep % 2 == 0 else ENGINES[::-1]):
                r = run_worker(env, e, path, args, "--prefill", sizes["prefill"], "--decode", str(sizes["decode"]))
                runs[e].append(r)
                if "error" not in r:
                    print(f"  {mtype} rep {rep + 1} {e:17s} prefill " +
                          " ".join(f"{n}: {v:7.1f}" for n, v in r["prefill"].items()) +
                          f"  decode {r.get('decode', 0):6.1f} tok/s  load {r['load_s']:.2f} s  "
                          f"peak {r['peak_rss_kib'] / 1024:.0f} MiB", flush=True)
        results[mtype] = {"path": str(path), "file_bytes": os.path.getsize(path),
                          **{e: median_of(runs[e]) for e in ENGINES}, "raw": runs}
    return results


def bench_memory(env, path, args):
    """Peak RSS serving one request that fills a 2048-token context, each engine once."""
    out = {}
    for e in ENGINES:
        out[e] = run_worker(env, e, path, args, "--prefill", "", "--decode", "0", "--n-ctx", "2048",
                            "--fill", "128")
        if "error" not in out[e]:
            print(f"  memory {e:17s} peak {out[e]['peak_rss_kib'] / 1024:.0f} MiB", flush=True)
    return out


def bench_kernels(env, args):
    """Runs bench/test_kernels_bench.py under pytest-benchmark; one dict per benchmark."""
    env = dict(env, LLMASOS_BENCH_THREADS=str(args.threads), LLMASOS_BENCH_QUICK="1" if args.quick else "0",
               OPENBLAS_NUM_THREADS=str(args.threads), OMP_NUM_THREADS=str(args.threads),
               MKL_NUM_THREADS=str(args.threads))
    with tempfile.TemporaryDirectory() as tmp:
        js = Path(tmp) / "kernels.json"
        cmd = [sys.executable, "-m", "pytest", str(HERE / "test_kernels_bench.py"), "-q", "-rs",
               "-p", "no:cacheprovider", f"--benchmark-json={js}", "--benchmark-columns=median,iqr,rounds",
               f"--benchmark-max-time={0.5 if args.quick else 2.0}"]
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=HERE.parent)
        skipped = [l for l in r.stdout.splitlines() if l.startswith("SKIPPED")]
        for line in skipped:
            print("  " + line, flush=True)
        if r.returncode != 0 or not js.is_file():
            print("  kernel benchmarks failed:\n" + "\n".join((r.stdout + r.stderr).splitlines()[-15:]))
            return [], skipped
        data = json.loads(js.read_text())
    kernels = [dict(b["extra_info"], name=b["name"], median_s=b["stats"]["median"], iqr_s=b["stats"]["iqr"],
                    rounds=b["stats"]["rounds"]) for b in data["benchmarks"]]
    return kernels, skipped


def machine_info(env) -> dict:
    info = {"host": socket.gethostname(), "python": platform.python_version(), "load_avg_at_start": os.getloadavg()}
    try:
        info["cpu"] = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        info["cpu"] = platform.processor()
    r = subprocess.run([sys.executable, "-c", "import json, llmasos; print(json.dumps(llmasos.runtime_info()))"],
                       env=env, capture_output=True, text=True, check=True)
    info["llmasos"] = json.loads(r.stdout)
    return info


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3, help="processes per engine x model (medians)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: Q4_1 only, one rep, prefill 128, decode 32, small kernel cases")
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("--models", default="Q4_1,Q8_0,Q4_K")
    args = ap.parse_args()
    types = ["Q4_1"] if args.quick else args.models.split(",")
    if args.quick:
        args.reps = 1
    sizes = {"prefill": "128", "decode": 32} if args.quick else {"prefill": "128,512", "decode": 128}
    env = child_env()
    t_start = time.time()

    peer_version = bench_setup.ensure_llama_cpp()
    info = machine_info(env)
    print(f"llmasos {info['llmasos'].get('version')} isa {info['llmasos'].get('isa')} "
          f"(AMX: {info['llmasos'].get('amx', '?')}), llama-cpp-python "
          f"{peer_version}, {args.threads} threads, {info['cpu']}, load {info['load_avg_at_start'][0]:.1f}", flush=True)
    models = bench_setup.ensure_models(types, env)
    engines = bench_engines(env, models, args, sizes)
    memory = bench_memory(env, models["Q4_1"], args)
    kernels, skipped = bench_kernels(env, args)

    rows = []
    for mtype, res in engines.items():
        if "error" not in res["llmasos"]:
            rows += report.engine_rows(mtype, res["llmasos"], res["llama-cpp-python"])
    if "error" not in memory["llmasos"]:
        rows += report.memory_rows("Q4_1", memory["llmasos"], memory["llama-cpp-python"])
    if "python_overhead_fraction" in engines["Q4_1"]["llmasos"]:
        rows.append(report.overhead_row(engines["Q4_1"]["llmasos"]))
    rows += report.kernel_rows(kernels)

    print()
    report.print_rows(rows)
    print("\n" + OVERHEAD_METHOD + "\n" + MEMORY_METHOD)
    if skipped:
        print("Kernel cases skipped: " + "; ".join(skipped))
    busy = max(info["load_avg_at_start"][0], os.getloadavg()[0])
    if busy > (os.cpu_count() or 1):
        print(f"WARNING: load average {busy:.1f} on {os.cpu_count()} CPUs: other work shared the "
              "cores, so these numbers (llama.cpp's spinning threads above all) are unreliable")

    day = datetime.date.today().isoformat()
    stem = Path(args.out) / f"{day}-{info['host']}{'-quick' if args.quick else ''}"
    stem.parent.mkdir(parents=True, exist_ok=True)
    # The output folder as given, or relative to the repository when it lies inside it: a record
    # names no folder of the machine it ran on.
    out = Path(args.out).resolve()
    recorded = dict(vars(args), out=str(out.relative_to(HERE.parent)) if out.is_relative_to(HERE.parent) else args.out)
    doc = {"date": day, "args": recorded, "sizes": sizes, "machine": info, "llama_cpp_python": peer_version,
           "models": engines, "memory": memory, "kernels": kernels, "kernels_skipped": skipped,
           "rows": report.as_dicts(rows), "methods": {"python_overhead": OVERHEAD_METHOD, "memory": MEMORY_METHOD},
           "elapsed_s": time.time() - t_start, "load_avg_at_end": os.getloadavg()}
    Path(f"{stem}.json").write_text(json.dumps(doc, indent=1))
    title = (f"llmasos vs llama-cpp-python / numpy / torch, {args.threads} threads, {info['host']}, {day}"
             + (" (quick)" if args.quick else ""))
    header = f"# {title}\n\n{info['cpu']}; ISA {info['llmasos'].get('isa')} (AMX: " \
             f"{info['llmasos'].get('amx', '?')}); reps {args.reps}.\n\n" \
             f"{OVERHEAD_METHOD}\n\n{MEMORY_METHOD}"
    Path(f"{stem}.md").write_text(report.markdown(rows, header))
    report.chart(rows, Path(f"{stem}.png"), title)
    print(f"\nwrote {stem}.json, .md, .png ({time.time() - t_start:.0f} s)")


if __name__ == "__main__":
    main()
