"""Subprocess half of test_gguf_corrupt: opens every file named on stdin (one path a line) and
prints one line per file: OK (opened), REJECTED (ModelFormatError) or ERROR <type>: <message>.
`--model` opens with _core.Model instead of _core.GgufFile. A crash shows up as a signal."""
import sys

from llmasos import _core


def main() -> int:
    opener = _core.GgufFile
    if "--model" in sys.argv:
        opener = lambda p: _core.Model(p, n_ctx=64, threads=1)  # noqa: E731
    for line in sys.stdin:
        path = line.strip()
        if not path:
            continue
        try:
            opener(path)
            verdict = "OK"
        except _core.ModelFormatError:
            verdict = "REJECTED"
        except Exception as e:  # noqa: BLE001 - reported to the parent test
            verdict = f"ERROR {type(e).__name__}: {e}".replace("\n", " ")
        print(f"{path}\t{verdict}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
