"""How domainllm writes files: atomically, readable by others, never half-written.

One policy for every output (manifests, metrics, reports, predictions, converted models, merged
models): write to a temporary name in the same folder, then rename onto the target, so a reader (or a
crash) sees the old file or the new one, never half of either. Files get the mode an ordinary
``open()`` would give under the process umask (0644 under the usual 022): reports are meant to be
read, and ``tempfile.mkstemp`` alone would leave them 0600. The same goes for what libraries write
for us (safetensors writes weight files 0600, ``tempfile.mkdtemp`` makes folders 0700):
:func:`umask_modes` gives such a finished file or folder the modes ``open()`` and ``mkdir()`` would
have, and :func:`replace_dir` applies it before a folder is moved into place.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

__all__ = [
    "atomic_write",
    "atomic_write_json",
    "atomic_write_jsonl",
    "atomic_write_text",
    "json_safe",
    "new_file_mode",
    "replace_dir",
    "temp_dir_beside",
    "umask_modes",
]


def _umask() -> int:
    mask = os.umask(0)  # the only way to read it; set back at once
    os.umask(mask)
    return mask


def new_file_mode() -> int:
    """The mode ``open(path, "w")`` would create a file with under the current umask."""
    return 0o666 & ~_umask()


def umask_modes(path: str | Path) -> Path:
    """Give ``path`` (a file, or a folder and everything in it) the modes ``open()``/``mkdir()`` would.

    For outputs domainllm just wrote through a library that picks a private mode; links are left alone.
    """
    path = Path(path)
    file_mode = new_file_mode()
    dir_mode = 0o777 & ~_umask()  # what mkdir() gives
    entries = [path, *path.rglob("*")] if path.is_dir() and not path.is_symlink() else [path]
    for entry in entries:
        if entry.is_symlink():
            continue
        mode = dir_mode if entry.is_dir() else file_mode
        if entry.exists() and (entry.stat().st_mode & 0o777) != mode:
            os.chmod(entry, mode)
    return path


def atomic_write(path: str | Path, write: Callable[[Path], Any]) -> Path:
    """Call ``write(tmp)`` on a temporary path beside ``path``, then rename it onto ``path``.

    ``write`` may create the file any way it likes (``Path.write_text``, ``matplotlib.savefig``). On
    any error, ``KeyboardInterrupt`` included, the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        os.chmod(tmp, new_file_mode())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) atomically."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def json_safe(value: Any) -> Any:
    """Strict-JSON data: nan/inf -> None, tuples -> lists, Paths -> str, numpy scalars -> Python."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return json_safe(value.item())
    return value


def atomic_write_json(path: str | Path, data: Any, indent: int | None = 2) -> Path:
    """Write ``data`` as strict JSON (see :func:`json_safe`) atomically, with a final newline."""
    text = json.dumps(json_safe(data), indent=indent, ensure_ascii=False, default=str) + "\n"
    return atomic_write_text(path, text)


def atomic_write_jsonl(path: str | Path, rows: Iterable[Any]) -> Path:
    """Write one JSON object per line atomically."""
    text = "".join(json.dumps(json_safe(row), ensure_ascii=False, default=str) + "\n" for row in rows)
    return atomic_write_text(path, text)


def temp_dir_beside(target: str | Path, tag: str = "tmp") -> Path:
    """A fresh hidden folder next to ``target`` (same filesystem, so it can be renamed onto it)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{target.name}.{tag}-", dir=target.parent))


def replace_dir(tmp: str | Path, out: str | Path) -> Path:
    """Move the finished folder ``tmp`` onto ``out``; an existing ``out`` is swapped away, then removed.

    The caller decides whether ``out`` may be replaced; this only makes the swap safe (at no moment is
    there neither the old nor the new folder).
    """
    tmp, out = Path(tmp), Path(out)
    umask_modes(tmp)  # temp_dir_beside made it 0700, and the weights in it may be 0600
    backup = None
    if out.exists():
        backup = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, backup)
    os.replace(tmp, out)
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)
    return out
