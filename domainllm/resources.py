"""Where the shipped, user-editable files live: chains/, configs/ and data/.

In a source checkout (or an editable install) they are the top-level folders of the repository; in
a wheel they are copied into ``domainllm/_resources/``. Either way, callers ask here.
"""

from __future__ import annotations

from pathlib import Path

from domainllm.errors import ConfigError

__all__ = ["BUILTIN_PREFIX", "resolve_path", "resource_path"]

BUILTIN_PREFIX = "builtin:"
_PACKAGE_DIR = Path(__file__).resolve().parent


def resource_path(name: str) -> Path:
    """The shipped folder ``name`` ("chains", "configs" or "data")."""
    installed = _PACKAGE_DIR / "_resources" / name
    if installed.is_dir():
        return installed
    return _PACKAGE_DIR.parent / name


def resolve_path(value: str | Path, base_dir: str | Path = ".", key: str = "path") -> Path:
    """Resolve a config path: ``builtin:dental`` is the shipped data/dental, relative paths use ``base_dir``.

    A relative path that does not exist under ``base_dir`` is tried against the working directory,
    so both ``--config configs/x.yaml`` with file-relative paths and CLI-relative paths work.
    """
    text = str(value)
    if text.startswith(BUILTIN_PREFIX):
        name = text[len(BUILTIN_PREFIX) :].strip("/")
        path = resource_path("data") / name
        if not path.exists():
            shipped = sorted(p.name for p in resource_path("data").iterdir() if p.is_dir())
            msg = f"Config key '{key}' names '{text}', which is not shipped. Built-in datasets: {', '.join(shipped)}."
            raise ConfigError(msg)
        return path
    path = Path(text).expanduser()
    if path.is_absolute():
        return path
    candidate = Path(base_dir) / path
    if candidate.exists() or not path.exists():
        return candidate
    return path.resolve()
