"""Serving a fine-tuned run: load it (adapter switchable), generate, wrap it for LangChain, merge it.

``load`` holds one base model with the adapter switched on or off (``adapters``: several runs'
adapters on that one base, switched by name); ``generate`` is the torch engine
(batched generation, streaming, option log-likelihoods) that everything decodes through;
``langchain`` wraps it as LangChain's ``HuggingFacePipeline`` and ``ChatHuggingFace``; ``merge``
writes a standalone merged model and checks it.

Names are imported lazily (PEP 562) so ``import domainllm.serve`` stays instant; torch, transformers,
peft and langchain load when a name is first used.
"""

from __future__ import annotations

from domainllm._lazy import lazy_exports

__all__ = [
    "DomainExpert",
    "ExpertChatModel",
    "ExpertLLM",
    "GeneratedText",
    "PromptTooLongError",
    "generate_texts",
    "load_expert",
    "load_runs",
    "merge_adapter",
    "option_loglikelihoods",
]

_WHERE = {
    "DomainExpert": "load",
    "load_expert": "load",
    "load_runs": "adapters",
    "ExpertChatModel": "langchain",
    "ExpertLLM": "langchain",
    "GeneratedText": "generate",
    "PromptTooLongError": "generate",
    "generate_texts": "generate",
    "option_loglikelihoods": "generate",
    "merge_adapter": "merge",
}


__getattr__, __dir__ = lazy_exports(__name__, {k: f".{v}" for k, v in _WHERE.items()}, __all__)
