"""Copy of a llama-family GGUF with only its first N blocks (layers): the same metadata, tokenizer,
embedding, head and per-layer shapes, fewer layers. A benchmark then compares runtimes on the model's
real layers where the whole file is too big to take along (per-token prefill and decode cost scales
with the layer count; the ratio between runtimes is what such a run reports).

    python bench/gguf_layers.py IN.gguf OUT.gguf N
"""
from __future__ import annotations

import re
import sys

from gguf import GGUFReader, GGUFValueType, GGUFWriter, quants


def truncate(src: str, dst: str, n_layers: int, retype=None) -> None:
    """retype(tensor name) -> a GGMLQuantizationType to re-quantize that tensor to, or None to copy
    it as it is (tests build mixed-type models with it)."""
    r = GGUFReader(src)
    arch = r.fields["general.architecture"].contents()
    have = r.fields[f"{arch}.block_count"].contents()
    if not 1 <= n_layers <= have:
        raise SystemExit(f"{src} has {have} layers; N must be in 1..{have}")
    w = GGUFWriter(dst, arch)
    if "general.alignment" in r.fields:  # the writer lays the data out by it, not just records it
        w.add_custom_alignment(int(r.fields["general.alignment"].contents()))
    for name, f in r.fields.items():
        if name.startswith("GGUF.") or name in ("general.architecture", "general.alignment"):
            continue
        value = n_layers if name == f"{arch}.block_count" else f.contents()
        vtype = f.types[0]
        sub = f.types[-1] if vtype == GGUFValueType.ARRAY else None
        w.add_key_value(name, value, vtype, sub_type=sub)
    block = re.compile(r"blk\.(\d+)\.")
    for t in r.tensors:
        m = block.match(t.name)
        if m and int(m.group(1)) >= n_layers:
            continue
        to = retype(t.name) if retype else None
        if to is None or to == t.tensor_type:
            w.add_tensor(t.name, t.data, raw_dtype=t.tensor_type)
        else:
            w.add_tensor(t.name, quants.quantize(quants.dequantize(t.data, t.tensor_type), to), raw_dtype=to)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    truncate(sys.argv[1], sys.argv[2], int(sys.argv[3]))
