"""Running the arms of a comparison: batching, timing, memory, and failures that stay contained.

Every arm answers the same questions with the same decoding settings and seed; what differs is only
the chain (prompt, retrieval, adapter). An arm is anything with LangChain's ``.batch()`` that maps
``{"question", "options", "context", "doc_id"}`` to ``{"answer", "sources", "prompt"}``: the chains of
:mod:`domainllm.chains` for the local model, or a chat model from another provider
(``provider:model`` through ``init_chat_model``), wrapped here to the same contract.

Timing is measured per batch: a question's latency is its batch's wall time divided by the batch
size (what a user serving batched requests pays per question), the arm's generation time is the
sum of its batches. A crash inside one arm is recorded on that arm (status ``failed``, the error and
the end of its traceback) and the comparison carries on with the others.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import random
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from domainllm.data.formatting import format_user_message
from domainllm.data.records import QARecord
from domainllm.errors import EvalError
from domainllm.eval.predictions import ArmRun, QuestionOutput

__all__ = [
    "Arm",
    "arm_inputs",
    "check_extra_arm",
    "extra_arm",
    "peak_rss_mb",
    "run_arm",
]

log = logging.getLogger(__name__)

# API key variables of the providers init_chat_model knows; None = no key (local servers, cloud IAM).
_PROVIDER_KEYS: dict[str, str | None] = {
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "azure_openai": "AZURE_OPENAI_API_KEY",
    "azure_ai": "AZURE_AI_CREDENTIAL",
    "google_genai": "GOOGLE_API_KEY",
    "google_vertexai": None,
    "google_anthropic_vertex": None,
    "bedrock": None,
    "bedrock_converse": None,
    "anthropic_bedrock": None,
    "cohere": "COHERE_API_KEY",
    "mistralai": "MISTRAL_API_KEY",
    "groq": "GROQ_API_KEY",
    "fireworks": "FIREWORKS_API_KEY",
    "together": "TOGETHER_API_KEY",
    "deepseek": "DEEPSEEK_API_KEY",
    "xai": "XAI_API_KEY",
    "perplexity": "PPLX_API_KEY",
    "openrouter": "OPENROUTER_API_KEY",
    "nvidia": "NVIDIA_API_KEY",
    "upstage": "UPSTAGE_API_KEY",
    "huggingface": "HUGGINGFACEHUB_API_TOKEN",
    "ollama": None,
    "litellm": None,
    "ibm": "WATSONX_APIKEY",
}


@dataclass
class Arm:
    """One way of answering: a batchable runnable plus what the report needs to know about it."""

    name: str
    runnable: Any
    kind: Literal["local", "extra"] = "local"
    adapter: bool = False
    retrieval: bool = False
    description: str = ""
    # Chunks retrieved per question (for recall@k); None for arms without retrieval.
    k: int | None = None
    # Prompt length of each input (cheap: render without generating). When given, questions are
    # batched with others of similar length, as a serving engine buckets requests: in input order,
    # left padding to the longest prompt of each batch adds ~25% prompt tokens to the dental RAG arms.
    prompt_lengths: Callable[[Sequence[dict[str, Any]]], list[int]] | None = None
    # The fine-tuned run whose adapter this arm uses (its name in the comparison); None for base arms.
    run: str | None = None
    # Called (with the arm) right before the arm's first batch: switches the shared model to the
    # arm's adapter, so arms of several runs share one base in memory.
    activate: Callable[[], None] | None = None


def arm_inputs(record: QARecord, context: str | None = None) -> dict[str, Any]:
    """The chain input for a question. ``context`` is the gold passage (used by the oracle arm only)."""
    return {
        "question": record.question,
        "options": list(record.options) if record.options else None,
        "context": context if context is not None else record.context,
        "doc_id": record.doc_id,
    }


def peak_rss_mb() -> float | None:
    """The process's resident-set high-water mark in MiB (None where the OS does not report it)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return round(peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024, 1)


def _cuda_reset() -> bool:
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available():
        return False
    torch.cuda.reset_peak_memory_stats()
    return True


def _cuda_peak_mb() -> float:
    import torch

    return round(torch.cuda.max_memory_allocated() / 2**20, 1)


def _seed_all(seed: int) -> None:
    """The same seed before every arm, so sampled decoding (if enabled) is comparable across arms."""
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:  # pragma: no cover
        pass
    if "torch" in sys.modules:
        import torch

        torch.manual_seed(seed)


def _source_ids(sources: Any) -> tuple[list[str], list[str]]:
    chunk_ids, doc_ids = [], []
    for doc in sources or []:
        meta = getattr(doc, "metadata", None) or (doc.get("metadata", {}) if isinstance(doc, dict) else {})
        chunk_ids.append(str(meta.get("chunk_id", "")))
        doc_ids.append(str(meta.get("doc_id", "")))
    return chunk_ids, doc_ids


def _answer_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    content = getattr(value, "content", None)  # an AIMessage from a chat model
    if isinstance(content, str):
        return content
    return "" if value is None else str(value)


def run_arm(
    arm: Arm,
    inputs: Sequence[dict[str, Any]],
    batch_size: int,
    count_tokens: Callable[[str], int] | None = None,
    seed: int = 0,
    progress: bool = True,
) -> ArmRun:
    """Run ``arm`` over ``inputs`` in batches of ``batch_size``; never raises for an arm's own crash.

    ``count_tokens`` (the local tokenizer) measures prompt and answer lengths; with the same
    tokenizer for every arm the numbers compare across arms, including extra arms (whose provider
    tokenizes differently: their counts are an approximation).
    """
    from tqdm.auto import tqdm

    run = ArmRun(
        name=arm.name,
        kind=arm.kind,
        adapter=arm.adapter,
        retrieval=arm.retrieval,
        description=arm.description,
        k=arm.k,
        run=arm.run,
    )
    has_cuda = _cuda_reset()
    _seed_all(seed)
    start = time.perf_counter()
    outputs: list[QuestionOutput] = []
    bar = tqdm(total=len(inputs), desc=f"arm {arm.name}", unit="q", disable=not progress, leave=False)
    try:
        if arm.activate is not None:
            arm.activate()
        order = list(range(len(inputs)))
        if arm.prompt_lengths is not None and len(inputs) > batch_size:
            lengths = arm.prompt_lengths(inputs)
            order.sort(key=lambda i: -lengths[i])
        slots: list[QuestionOutput | None] = [None] * len(inputs)
        for first in range(0, len(order), batch_size):
            positions = order[first : first + batch_size]
            batch = [inputs[i] for i in positions]
            t0 = time.perf_counter()
            results = arm.runnable.batch(batch)
            elapsed = time.perf_counter() - t0
            if len(results) != len(batch):
                msg = (
                    f"arm '{arm.name}' returned {len(results)} results for a batch of {len(batch)} questions"
                )
                raise EvalError(msg)
            run.generation_s += elapsed
            for position, result in zip(positions, results, strict=True):
                result = result if isinstance(result, dict) else {"answer": result}
                answer = _answer_text(result.get("answer")).strip()
                prompt = result.get("prompt")
                prompt = prompt if isinstance(prompt, str) else (str(prompt) if prompt is not None else None)
                chunk_ids, doc_ids = _source_ids(result.get("sources"))
                slots[position] = QuestionOutput(
                    answer=answer,
                    prompt=prompt,
                    chunk_ids=chunk_ids,
                    doc_ids=doc_ids,
                    latency_s=elapsed / len(batch),
                    prompt_tokens=count_tokens(prompt) if count_tokens and prompt else None,
                    generated_tokens=count_tokens(answer) if count_tokens else None,
                )
            bar.update(len(batch))
        outputs = [slot for slot in slots if slot is not None]
    except Exception as exc:
        run.status = "failed"
        run.error = f"{exc.__class__.__name__}: {exc}"
        run.traceback = "".join(traceback.format_exception(exc)[-6:])
        log.error("Arm '%s' failed: %s", arm.name, run.error)
        outputs = []
    finally:
        bar.close()
    run.outputs = outputs
    run.wall_s = time.perf_counter() - start
    run.peak_rss_mb = peak_rss_mb()
    run.cuda_peak_mb = _cuda_peak_mb() if has_cuda else None
    return run


# --------------------------------------------------------------------------------------------------
# Extra arms: chat models from other providers


def parse_provider_model(spec: str, key: str = "compare.extra_arms") -> tuple[str, str]:
    """Split ``provider:model``; an unknown provider is a config error (a typo should fail at once)."""
    provider, _, model = spec.partition(":")
    provider, model = provider.strip(), model.strip()
    if not provider or not model:
        msg = (
            f"Config key '{key}' contains {spec!r}; write it as 'provider:model', e.g. 'openai:gpt-4o-mini'."
        )
        raise EvalError(msg)
    known = _provider_packages()
    if provider not in known:
        msg = (
            f"Config key '{key}' names provider {provider!r} in {spec!r}, which LangChain's init_chat_model "
            f"does not know. Known providers: {', '.join(sorted(known))}."
        )
        raise EvalError(msg)
    return provider, model


def _provider_packages() -> dict[str, str]:
    """provider -> importable package, from LangChain's own table when it exposes one."""
    try:
        from langchain.chat_models import base

        table = base._BUILTIN_PROVIDERS  # private, but the authoritative list of this langchain version
        return {name: entry[0].split(".")[0] for name, entry in table.items()}
    except (ImportError, AttributeError, TypeError, IndexError):
        return {name: f"langchain_{name}" for name in _PROVIDER_KEYS}


def check_extra_arm(spec: str, key: str = "compare.extra_arms") -> str | None:
    """Why ``provider:model`` cannot run here (missing package or API key), or None when it can."""
    provider, _ = parse_provider_model(spec, key)
    package = _provider_packages()[provider]
    if importlib.util.find_spec(package) is None:
        pip = package.replace("_", "-")
        return f"its LangChain integration package {pip} is not installed (pip install {pip})."
    env = _PROVIDER_KEYS.get(provider, f"{provider.upper()}_API_KEY")
    if env and not os.environ.get(env):
        return f"its API key environment variable {env} is not set."
    return None


def extra_arm(spec: str, system_prompt: str | None, user_template: str | None, max_tokens: int) -> Arm:
    """A chat model from another provider as an arm, answering with the prompt-only arm's prompt.

    Why prompt-only: the extra arm is the "just ask a frontier model" reference point. Giving it the
    persona system prompt and the same user message as the local prompt-only arm makes it directly
    comparable to that arm; it gets no retrieval, so it measures what the big model already knows
    about the domain. Decoding is greedy (temperature 0) where the provider allows it.
    """
    from langchain.chat_models import init_chat_model
    from langchain_core.runnables import RunnableLambda

    provider, model_name = parse_provider_model(spec)
    model = init_chat_model(model_name, model_provider=provider, temperature=0, max_tokens=max_tokens)

    def to_messages(inputs: dict[str, Any]) -> list[tuple[str, str]]:
        record = QARecord(
            id="-",
            question=inputs["question"],
            answer="-",
            options=tuple(inputs["options"]) if inputs.get("options") else None,
        )
        user = format_user_message(record, template=user_template)
        messages = [("system", system_prompt)] if system_prompt else []
        return [*messages, ("human", user)]

    def run(inputs: dict[str, Any]) -> dict[str, Any]:
        messages = to_messages(inputs)
        reply = model.invoke(messages)
        prompt = "\n\n".join(f"[{role}] {text}" for role, text in messages)
        return {"answer": _answer_text(reply), "sources": [], "prompt": prompt}

    return Arm(
        name=spec,
        runnable=RunnableLambda(run),
        kind="extra",
        description=f"{spec} through init_chat_model, with the prompt_only arm's prompt (no retrieval)",
    )
