"""Builds GGUF files byte by byte for tests: every field can be set to any value (so tests can
corrupt it), plus make_tiny_llama(), a valid tiny llama-architecture model with a GPT-2 BPE vocab.

    b = GgufBuilder(version=3)
    b.kv("general.architecture", "llama")                 # type inferred (str -> STRING)
    b.kv("x", Val.array(T.ARRAY, [Val.array(T.UINT8, [1, 2])]))   # nested arrays
    b.tensor("w", ne=[64, 2], type_id=F32, data=np.zeros(128, np.float32).tobytes())
    raw = b.build()                                        # bytes; b.layout gives section offsets
"""
from __future__ import annotations

import dataclasses
import enum
import struct
from pathlib import Path

import numpy as np


class T(enum.IntEnum):
    """GGUF metadata value types."""
    UINT8 = 0
    INT8 = 1
    UINT16 = 2
    INT16 = 3
    UINT32 = 4
    INT32 = 5
    FLOAT32 = 6
    BOOL = 7
    STRING = 8
    ARRAY = 9
    UINT64 = 10
    INT64 = 11
    FLOAT64 = 12


# ggml tensor type ids and (block_size, type_size) of those llmasos supports.
F32, F16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q4_K, Q5_K, Q6_K, BF16 = 0, 1, 2, 3, 6, 7, 8, 10, 12, 13, 14, 30
BLOCK = {F32: (1, 4), F16: (1, 2), Q4_0: (32, 18), Q4_1: (32, 20), Q5_0: (32, 22), Q5_1: (32, 24),
         Q8_0: (32, 34), Q4_K: (256, 144), Q5_K: (256, 176), Q6_K: (256, 210), BF16: (1, 2)}

_SCALAR_FMT = {T.UINT8: "<B", T.INT8: "<b", T.UINT16: "<H", T.INT16: "<h", T.UINT32: "<I",
               T.INT32: "<i", T.FLOAT32: "<f", T.BOOL: "<B", T.UINT64: "<Q", T.INT64: "<q",
               T.FLOAT64: "<d"}


def gguf_string(s: str | bytes, length: int | None = None) -> bytes:
    """u64 length + bytes; `length` overrides the declared length (for corruption)."""
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b) if length is None else length) + b


@dataclasses.dataclass
class Val:
    """A typed metadata value. `type_id`/`elem_type` may be any u32 (unknown types for tests);
    `count` overrides an array's declared length; `raw` replaces the encoded payload entirely."""
    type_id: int
    value: object = None
    elem_type: int | None = None
    count: int | None = None
    str_len: int | None = None
    raw: bytes | None = None

    @staticmethod
    def array(elem_type: int, items, count: int | None = None) -> "Val":
        return Val(T.ARRAY, list(items), elem_type=elem_type, count=count)

    def encode(self) -> bytes:
        """Payload without the leading type tag."""
        if self.raw is not None:
            return self.raw
        if self.type_id == T.STRING:
            return gguf_string(self.value, self.str_len)
        if self.type_id == T.ARRAY:
            items = [v if isinstance(v, Val) else Val(self.elem_type, v) for v in self.value]
            n = len(items) if self.count is None else self.count
            return struct.pack("<IQ", self.elem_type, n) + b"".join(v.encode() for v in items)
        return struct.pack(_SCALAR_FMT[T(self.type_id)], self.value)


def infer(value) -> Val:
    """Python value -> Val: str STRING, bool BOOL, int INT32 (UINT64 if large), float FLOAT32,
    list ARRAY (element type from the first element; nested lists become nested arrays)."""
    if isinstance(value, Val):
        return value
    if isinstance(value, bool):
        return Val(T.BOOL, int(value))
    if isinstance(value, int):
        return Val(T.INT32 if -2**31 <= value < 2**31 else T.UINT64, value)
    if isinstance(value, float):
        return Val(T.FLOAT32, value)
    if isinstance(value, (str, bytes)):
        return Val(T.STRING, value)
    if isinstance(value, (list, tuple)):
        items = [infer(v) for v in value]
        et = items[0].type_id if items else T.INT32
        return Val(T.ARRAY, items, elem_type=et)
    raise TypeError(f"cannot infer a GGUF type for {value!r}")


@dataclasses.dataclass
class TensorSpec:
    """One tensor info + its data. `n_dims` overrides len(ne); `offset` overrides the automatic
    (aligned, packed) placement in the info only; `data` is still written at the automatic place."""
    name: str | bytes
    ne: list
    type_id: int
    data: bytes
    n_dims: int | None = None
    offset: int | None = None
    name_len: int | None = None


class GgufBuilder:
    """Accumulates kvs and tensors; build() returns the file bytes. Fields set to None take their
    honest values; anything else is written verbatim."""

    def __init__(self, version: int = 3, magic: bytes = b"GGUF", alignment: int = 32):
        self.version = version
        self.magic = magic
        self.alignment = alignment          # used to place data; write general.alignment yourself
        self.kvs: list[tuple[bytes, int, bytes]] = []   # (encoded key, type tag, payload)
        self.tensors: list[TensorSpec] = []
        self.tensor_count: int | None = None
        self.kv_count: int | None = None
        self.layout: dict[str, int] = {}

    def kv(self, key: str | bytes, value, key_len: int | None = None) -> "GgufBuilder":
        v = infer(value)
        self.kvs.append((gguf_string(key, key_len), v.type_id, v.encode()))
        return self

    def set_kv(self, key: str, value) -> "GgufBuilder":
        """Replaces the value (and type) of an existing key in place, or appends the key."""
        enc = gguf_string(key)
        v = infer(value)
        for i, (k, _, _) in enumerate(self.kvs):
            if k == enc:
                self.kvs[i] = (enc, v.type_id, v.encode())
                return self
        return self.kv(key, v)

    def tensor(self, name: str | bytes, ne, type_id: int, data: bytes | None = None,
               **overrides) -> "GgufBuilder":
        if data is None:
            data = bytes(tensor_nbytes(ne, type_id))
        self.tensors.append(TensorSpec(name, list(ne), type_id, data, **overrides))
        return self

    def build(self) -> bytes:
        out = bytearray(self.magic)
        out += struct.pack("<I", self.version)
        nt = len(self.tensors) if self.tensor_count is None else self.tensor_count
        nk = len(self.kvs) if self.kv_count is None else self.kv_count
        out += struct.pack("<QQ", nt, nk)
        self.layout = {"version": 4, "tensor_count": 8, "kv_count": 16, "kv": len(out), "kv_ends": []}
        for key, tid, payload in self.kvs:
            out += key + struct.pack("<I", tid) + payload
            self.layout["kv_ends"].append(len(out))
        self.layout["tensor_info"] = len(out)
        self.layout["tensor_info_ends"] = []
        # Automatic placement: each tensor's data packed in order, each start aligned.
        offsets, pos = [], 0
        for t in self.tensors:
            pos = _align(pos, self.alignment)
            offsets.append(pos)
            pos += len(t.data)
        for t, off in zip(self.tensors, offsets):
            n_dims = len(t.ne) if t.n_dims is None else t.n_dims
            out += gguf_string(t.name, t.name_len) + struct.pack("<I", n_dims)
            out += b"".join(struct.pack("<Q", d & (2**64 - 1)) for d in t.ne)
            out += struct.pack("<IQ", t.type_id, off if t.offset is None else t.offset)
            self.layout["tensor_info_ends"].append(len(out))
        self.layout["header_end"] = len(out)
        if self.tensors:
            out += bytes(_align(len(out), self.alignment) - len(out))
        self.layout["data"] = len(out)
        for t, off in zip(self.tensors, offsets):
            start = self.layout["data"] + off
            out += bytes(start - len(out)) + t.data
        self.layout["end"] = len(out)
        return bytes(out)

    def write(self, path) -> Path:
        Path(path).write_bytes(self.build())
        return Path(path)


def _align(x: int, a: int) -> int:
    return (x + a - 1) // a * a


def tensor_nbytes(ne, type_id: int) -> int:
    bs, ts = BLOCK[type_id]
    n = ne[0] // bs * ts
    for d in ne[1:]:
        n *= d
    return n


# ---- encoders for tensor data ------------------------------------------------------------------

def quantize_q8_0(x: np.ndarray) -> bytes:
    """float32 array (last dim a multiple of 32) -> Q8_0 blocks: f16 scale + 32 int8."""
    blocks = np.asarray(x, np.float32).reshape(-1, 32)
    amax = np.abs(blocks).max(axis=1)
    d = (amax / 127.0).astype(np.float16)
    dq = d.astype(np.float32)
    inv = np.where(dq > 0, 1.0 / np.where(dq > 0, dq, 1), 0.0)
    q = np.clip(np.rint(blocks * inv[:, None]), -127, 127).astype(np.int8)
    rec = np.zeros(len(blocks), dtype=[("d", "<f2"), ("q", "i1", (32,))])
    rec["d"], rec["q"] = d, q
    return rec.tobytes()


def dequantize_q8_0(raw: bytes, shape) -> np.ndarray:
    rec = np.frombuffer(raw, dtype=[("d", "<f2"), ("q", "i1", (32,))])
    return (rec["d"].astype(np.float32)[:, None] * rec["q"].astype(np.float32)).reshape(shape)


# ---- a valid tiny llama ------------------------------------------------------------------------

def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map (byte-level BPE alphabet)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


CONTROL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
_WORDS = [" the", " and", "ing", " world", " is", " hello", "er", " of", "The", " to", " in",
          " model", " token", "ation", " for", " you", " that", "Hello", " a"]


def tiny_vocab() -> tuple[list[str], list[int], list[str]]:
    """(tokens, token_types, merges): 3 control tokens, the 256 byte tokens (in byte order), then
    tokens built by left-to-right merges of a few common words (each merge's parts exist)."""
    b2u = bytes_to_unicode()
    tokens = CONTROL_TOKENS + [b2u[b] for b in range(256)]
    types = [3] * len(CONTROL_TOKENS) + [1] * 256
    merges, have = [], set(tokens)
    for w in _WORDS:
        sym = [b2u[b] for b in w.encode()]
        cur = sym[0]
        for s in sym[1:]:
            merged = cur + s
            if merged not in have:
                merges.append(f"{cur} {s}")
                tokens.append(merged)
                types.append(1)
                have.add(merged)
            cur = merged
    return tokens, types, merges


_DELETE = object()


@dataclasses.dataclass
class TinyModel:
    """What make_tiny_llama wrote: the path, the metadata, and every weight as float32 in numpy
    order (shape = reversed ne; dequantized when stored as Q8_0) for reference computations."""
    path: Path
    metadata: dict
    weights: dict
    tokens: list
    merges: list


def make_tiny_llama(path, *, n_embd=64, n_layer=2, n_head=4, n_head_kv=2, n_ff=96, n_ctx=256,
                    wtype="f32", tie_embeddings=False, rope_base=10000.0, eps=1e-5, seed=0,
                    version=3, metadata=None, tensors=None, drop_tensors=(), scale=0.1,
                    extra_tokens=()) -> TinyModel:
    """Writes a valid llama GGUF. Overrides, for corrupt variants:
      metadata={key: value}  set (python value or Val) or, with value None, delete a key;
      tensors={name: array}   replace a tensor's float32 numpy array (any shape; numpy order);
      drop_tensors=[names]    leave tensors out. wtype "f32" or "q8_0" for the 2-D matrices.
    extra_tokens: texts added at the end of the vocabulary as user-defined tokens (type 4), each
    one token wherever it appears in text."""
    rng = np.random.default_rng(seed)
    tokens, types, merges = tiny_vocab()
    tokens, types = tokens + list(extra_tokens), types + [4] * len(extra_tokens)
    n_vocab = len(tokens)
    hd = n_embd // n_head
    md = {
        "general.architecture": "llama",
        "general.name": "tiny-llama-test",
        "general.alignment": Val(T.UINT32, 32),
        "llama.block_count": Val(T.UINT32, n_layer),
        "llama.context_length": Val(T.UINT32, n_ctx),
        "llama.embedding_length": Val(T.UINT32, n_embd),
        "llama.feed_forward_length": Val(T.UINT32, n_ff),
        "llama.attention.head_count": Val(T.UINT32, n_head),
        "llama.attention.head_count_kv": Val(T.UINT32, n_head_kv),
        "llama.rope.freq_base": Val(T.FLOAT32, rope_base),
        "llama.attention.layer_norm_rms_epsilon": Val(T.FLOAT32, eps),
        "llama.rope.dimension_count": Val(T.UINT32, hd),
        "llama.vocab_size": Val(T.UINT32, n_vocab),
        "tokenizer.ggml.model": "gpt2",
        "tokenizer.ggml.pre": "smollm",
        "tokenizer.ggml.tokens": Val.array(T.STRING, tokens),
        "tokenizer.ggml.token_type": Val.array(T.INT32, types),
        "tokenizer.ggml.merges": Val.array(T.STRING, merges),
        "tokenizer.ggml.bos_token_id": Val(T.UINT32, 1),
        "tokenizer.ggml.eos_token_id": Val(T.UINT32, 2),
        "tokenizer.ggml.unknown_token_id": Val(T.UINT32, 0),
        "tokenizer.ggml.padding_token_id": Val(T.UINT32, 2),
        "tokenizer.ggml.add_bos_token": False,
        "tokenizer.ggml.add_space_prefix": False,
        "tokenizer.chat_template": ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
                                    "{{ m['content'] }}<|im_end|>\n{% endfor %}"
                                    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"),
    }
    for k, v in (metadata or {}).items():
        if v is None:
            md.pop(k, None)
        else:
            md[k] = v

    def rnd(*shape):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    # numpy shapes (rows, cols): ne = [cols, rows] as in ggml.
    w = {"token_embd.weight": rnd(n_vocab, n_embd),
         "output_norm.weight": 1.0 + rnd(n_embd)}
    if not tie_embeddings:
        w["output.weight"] = rnd(n_vocab, n_embd)
    for i in range(n_layer):
        p = f"blk.{i}."
        w[p + "attn_norm.weight"] = 1.0 + rnd(n_embd)
        w[p + "attn_q.weight"] = rnd(n_head * hd, n_embd)
        w[p + "attn_k.weight"] = rnd(n_head_kv * hd, n_embd)
        w[p + "attn_v.weight"] = rnd(n_head_kv * hd, n_embd)
        w[p + "attn_output.weight"] = rnd(n_embd, n_head * hd)
        w[p + "ffn_norm.weight"] = 1.0 + rnd(n_embd)
        w[p + "ffn_gate.weight"] = rnd(n_ff, n_embd)
        w[p + "ffn_up.weight"] = rnd(n_ff, n_embd)
        w[p + "ffn_down.weight"] = rnd(n_embd, n_ff)
    for k, v in (tensors or {}).items():
        w[k] = np.asarray(v, np.float32)
    for k in drop_tensors:
        w.pop(k, None)

    b = GgufBuilder(version=version)
    for k, v in md.items():
        b.kv(k, v)
    stored = {}
    for name, arr in w.items():
        ne = list(reversed(arr.shape))
        if wtype == "q8_0" and arr.ndim == 2 and arr.shape[-1] % 32 == 0:
            raw = quantize_q8_0(arr)
            b.tensor(name, ne, Q8_0, raw)
            stored[name] = dequantize_q8_0(raw, arr.shape)
        elif wtype in ("f32", "q8_0"):
            b.tensor(name, ne, F32, arr.tobytes())
            stored[name] = arr
        else:
            raise ValueError(f"wtype {wtype!r}: use 'f32' or 'q8_0'")
    p = b.write(path)
    plain = {k: (v.value if isinstance(v, Val) and v.type_id != T.ARRAY else
                 (v.value if isinstance(v, Val) else v)) for k, v in md.items()}
    return TinyModel(p, plain, stored, tokens, merges)
