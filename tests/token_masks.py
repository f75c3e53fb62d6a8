"""The reference the JSON tests hold the token mask to: every token's bytes fed to the byte
automaton after a prefix, which the mask's shortcuts (first byte, plain strings, whitespace,
pattern caches) must agree with exactly; and random walks through a schema's automaton."""
from llmasos import _core


def token_pieces(tok):
    """Each token's bytes (b"" for control and end tokens, which the mask never allows as text)."""
    return [tok.token_bytes(i) if not (tok.is_control(i) or tok.is_eog(i)) else b"" for i in range(len(tok))]


def scanner(graph=None):
    """scan(data) -> (bytes taken, complete): JSON mode's automaton, or the schema's."""
    return _core.json_scan if graph is None else (lambda data: _core.schema_scan(graph, data))


def fed(pieces, data: bytes, scan):
    """The ids whose bytes the automaton takes whole after `data`."""
    return [i for i, b in enumerate(pieces) if b and scan(data + b)[0] == len(data) + len(b)]


def assert_masks_at(tok, pieces, prefixes, graph=None, complete_ok=False):
    """After each prefix (tokenized, decoding back to itself), the mask equals feeding every token,
    and some token fits (or, with complete_ok, the prefix is a complete document)."""
    scan = scanner(graph)
    for prefix in prefixes:
        ids = tok.encode(prefix, False, False)
        data = prefix.encode()
        assert tok.decode(ids).encode() == data
        want = fed(pieces, data, scan)
        assert _core.json_allowed(tok, ids, graph) == want, prefix
        assert want or (complete_ok and scan(data)[1]), prefix


def random_document(graph, rng, limit=400):
    """A random walk over the bytes the automaton takes, one at a time; the document when it
    completes within `limit` bytes. Asserts that some byte can always follow."""
    data = b""
    for _ in range(limit):
        nxt = [b for b in range(256) if _core.schema_scan(graph, data + bytes([b]))[0] == len(data) + 1]
        assert nxt, data  # never a dead end
        closing = [b for b in nxt if b in b'"}],']
        data += bytes([rng.choice(closing if closing and rng.random() < 0.35 else nxt)])
        if _core.schema_scan(graph, data)[1]:
            return data
    return None
