"""Seed inputs for fuzz_model_load.cc: small valid llama GGUF files, one per weight type the loader
takes (F32, then each requantized with the project's own quantizer), with untied and tied output
heads. Kept small (under ~200 KB) so that mutations stay cheap.

    python tests/fuzz/make_seeds.py OUT_DIR
"""
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: gguf_factory
from gguf_factory import make_tiny_llama  # noqa: E402
from llmasos import _core  # noqa: E402

LEGACY = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "F16", "BF16"]
KQUANTS = ["Q4_K", "Q5_K", "Q6_K"]


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        # Legacy formats take 32-column blocks; K-quants 256-column super-blocks.
        for dims, types in (({"n_embd": 64, "n_ff": 96, "n_head": 4, "n_head_kv": 2}, LEGACY),
                            ({"n_embd": 256, "n_ff": 256, "n_head": 4, "n_head_kv": 1}, KQUANTS)):
            for tied in (False, True):
                src = Path(tmp) / f"f32-{dims['n_embd']}-{int(tied)}.gguf"
                make_tiny_llama(src, n_layer=1, n_ctx=32, tie_embeddings=tied, **dims)
                if dims["n_embd"] == 64:
                    (out / src.name).write_bytes(src.read_bytes())
                for t in types:
                    dst = out / f"{t.lower()}-{dims['n_embd']}-{int(tied)}.gguf"
                    _core.quantize_gguf(str(src), str(dst), t, 1)
    for p in sorted(out.iterdir()):
        print(f"{p.name}: {p.stat().st_size} bytes")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
