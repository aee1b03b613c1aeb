"""Old home of the generation engine and the LangChain wrappers; kept only as a re-export.

Split into :mod:`domainllm.serve.generate` (the torch engine) and :mod:`domainllm.serve.langchain`
(``ExpertLLM``, ``ExpertChatModel``). ``domainllm/chat.py`` still imports ``check_prompt_lengths``
from here; once it imports from ``domainllm.serve.generate``, delete this module. Names load lazily,
so importing the engine's names from here does not import LangChain.
"""

from __future__ import annotations

from domainllm._lazy import lazy_exports

_ENGINE = (
    "GeneratedText",
    "PromptTooLongError",
    "check_prompt_lengths",
    "end_of_turn_ids",
    "generate_texts",
    "generation_kwargs",
    "model_context_length",
    "pad_batch",
)
__all__ = sorted([*_ENGINE, "ExpertChatModel", "ExpertLLM"])

_WHERE = {name: "domainllm.serve.generate" for name in _ENGINE}
_WHERE.update({"ExpertChatModel": "domainllm.serve.langchain", "ExpertLLM": "domainllm.serve.langchain"})

__getattr__, __dir__ = lazy_exports(__name__, _WHERE, __all__)
