"""Serving a fine-tuned run: load it (adapter switchable), wrap it for LangChain, merge it for export.

Names are imported lazily (PEP 562) so ``import domainllm.serve`` stays instant; torch, transformers,
peft and langchain load when a name is first used.
"""

from __future__ import annotations

from domainllm._lazy import lazy_exports

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


__getattr__, __dir__ = lazy_exports(__name__, {k: f".{v}" for k, v in _WHERE.items()}, __all__)
