"""One helper for the packages' lazy exports (PEP 562), so ``import domainllm`` stays instant.

Each package lists where its public names live; the heavy module (torch, transformers, LangChain,
chromadb) is imported the first time a name is used, and the value is cached on the package.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, where: Mapping[str, str], public: Sequence[str] | None = None
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``.

    ``where`` maps each lazily loaded name to its module: relative (``".store"``, resolved against
    ``package``) or absolute (``"domainllm.config"``).
    """

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            msg = f"module {package!r} has no attribute {name!r}"
            raise AttributeError(msg)
        value = getattr(importlib.import_module(module, package), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(public or where))

    return __getattr__, __dir__
