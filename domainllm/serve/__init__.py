"""Serving a fine-tuned run: load it (adapter switchable), wrap it for LangChain, merge it for export.

Names are imported lazily (PEP 562) so ``import domainllm.serve`` stays instant; torch, transformers,
peft and langchain load when a name is first used.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "DomainExpert",
    "ExpertChatModel",
    "ExpertLLM",
    "PromptTooLongError",
    "load_expert",
    "merge_adapter",
]

_WHERE = {
    "DomainExpert": "load",
    "load_expert": "load",
    "ExpertChatModel": "pipeline",
    "ExpertLLM": "pipeline",
    "PromptTooLongError": "pipeline",
    "merge_adapter": "merge",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        msg = f"module 'domainllm.serve' has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(f"domainllm.serve.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
