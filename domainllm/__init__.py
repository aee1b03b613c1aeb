"""domainllm: turn a base LLM into a domain expert, and prove with numbers whether it was worth it.

The public API, in the order of the data flow::

    cfg = domainllm.load_config("configs/dental.yaml", ["training.num_epochs=2"])
    run_dir = domainllm.train(cfg)                    # QLoRA with TRL's SFTTrainer -> run directory
    expert = domainllm.load_expert(run_dir)           # adapter on the (quantized) base, one copy in memory
    llm = expert.llm()                                # a langchain_huggingface.HuggingFacePipeline
    report_dir = domainllm.compare(cfg, run_dir=run_dir)  # prompt-only vs RAG vs fine-tuned vs both

Names resolve lazily, so ``import domainllm`` does not import torch or LangChain.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from domainllm._lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "DomainConfig": "domainllm.config",
    "load_config": "domainllm.config",
    "save_config": "domainllm.config",
    "DomainLLMError": "domainllm.errors",
    "QARecord": "domainllm.data.records",
    "QADataset": "domainllm.data.records",
    "load_domain": "domainllm.data",
    "load_qa": "domainllm.data",
    "load_documents": "domainllm.data",
    "split_documents": "domainllm.data",
    "render_prompt": "domainllm.data.formatting",
    "render_example": "domainllm.data.formatting",
    "train": "domainllm.training",
    "RunDir": "domainllm.rundir",
    "load_expert": "domainllm.serve",
    "merge_adapter": "domainllm.serve",
    "build_index": "domainllm.rag",
    "open_store": "domainllm.rag",
    "build_chain": "domainllm.chains",
    "load_chain_spec": "domainllm.chains",
    "compare": "domainllm.benchmark.comparison",
    "collect_info": "domainllm.info",
}

__all__ = [
    "DomainConfig",
    "DomainLLMError",
    "QADataset",
    "QARecord",
    "RunDir",
    "__version__",
    "build_chain",
    "build_index",
    "collect_info",
    "compare",
    "load_chain_spec",
    "load_config",
    "load_documents",
    "load_domain",
    "load_expert",
    "load_qa",
    "merge_adapter",
    "open_store",
    "render_example",
    "render_prompt",
    "save_config",
    "split_documents",
    "train",
]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from domainllm.benchmark.comparison import compare
    from domainllm.chains import build_chain, load_chain_spec
    from domainllm.config import DomainConfig, load_config, save_config
    from domainllm.data import load_documents, load_domain, load_qa, split_documents
    from domainllm.data.formatting import render_example, render_prompt
    from domainllm.data.records import QADataset, QARecord
    from domainllm.errors import DomainLLMError
    from domainllm.info import collect_info
    from domainllm.rag import build_index, open_store
    from domainllm.rundir import RunDir
    from domainllm.serve import load_expert, merge_adapter
    from domainllm.training import train


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__)
