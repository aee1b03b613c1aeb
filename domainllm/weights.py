"""Cheap checks that weight files are there and whole, before a model or adapter is loaded.

A truncated ``*.safetensors`` (an interrupted copy, a full disk) or a model folder with a
``config.json`` and no weights otherwise fails deep inside transformers or PEFT with a library
error that names neither the run nor the fix. These checks read only the safetensors header (the
first bytes and the table of tensor offsets, via the safetensors library itself), never the
tensors, so they cost milliseconds even for a large model.
"""

from __future__ import annotations

import json
from pathlib import Path

from domainllm.errors import ModelError

__all__ = ["WEIGHT_FILES", "check_adapter_weights", "model_weights_problem", "weights_file_problem"]

# What from_pretrained looks for in a model folder, in its order (sharded checkpoints have an index).
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


def weights_file_problem(path: str | Path) -> str | None:
    """Why the weights file ``path`` cannot be loaded, or None when its header is whole.

    Only ``.safetensors`` files are checked (their header says how long the file must be); a pickle
    (``.bin``) has no such header and is left to the loader.
    """
    path = Path(path)
    if not path.is_file():
        return "the file does not exist"
    if path.suffix != ".safetensors":
        return None
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="np"):
            pass
    except Exception as exc:  # SafetensorError (header too small, not fully covered), OSError
        return f"{exc.__class__.__name__}: {' '.join(str(exc).split())}"
    return None


def model_weights_problem(folder: str | Path) -> str | None:
    """Why the model folder ``folder`` (one with a config.json) cannot be loaded, or None.

    No weights file at all, a shard an index names that is missing, or a safetensors file whose
    header is damaged.
    """
    folder = Path(folder)
    present = [name for name in WEIGHT_FILES if (folder / name).is_file()]
    if not present:
        found = sorted(p.name for p in folder.iterdir())[:8]
        return f"it holds no weights (none of {', '.join(WEIGHT_FILES)}; it has {', '.join(found) or 'nothing else'})"
    files: list[Path] = []
    for name in present:
        if name.endswith(".index.json"):
            try:
                shards = sorted(
                    set(json.loads((folder / name).read_text(encoding="utf-8"))["weight_map"].values())
                )
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
                return f"its shard index {name} cannot be read ({exc.__class__.__name__}: {exc})"
            missing = [s for s in shards if not (folder / s).is_file()]
            if missing:
                return f"shard(s) {', '.join(missing[:3])} named in {name} are missing"
            files += [folder / s for s in shards]
        else:
            files.append(folder / name)
    for path in files:
        problem = weights_file_problem(path)
        if problem:
            return f"{path.name} cannot be read ({problem}): the file is truncated or damaged"
    return None


def check_adapter_weights(adapter_dir: str | Path, fix: str) -> None:
    """Raise :class:`ModelError` when the adapter's ``adapter_model.safetensors`` is damaged; ``fix`` ends the message."""
    weights = Path(adapter_dir) / "adapter_model.safetensors"
    problem = weights_file_problem(weights) if weights.is_file() else None
    if problem:
        msg = (
            f"The adapter weights '{weights}' cannot be read: {problem}. The file is truncated or damaged (an "
            f"interrupted copy or download?). {fix}"
        )
        raise ModelError(msg)
