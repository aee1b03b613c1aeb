"""``domainllm info``: what this machine will run on, and whether the offline defaults work.

It is the first command to run on a new machine: it proves the default model loads and generates
without a network before anyone waits for a training run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from domainllm.errors import DomainLLMError

__all__ = ["InfoReport", "collect_info"]


@dataclass
class InfoReport:
    """Everything ``info`` prints, as data (the CLI renders it; tests assert on it)."""

    device: str
    device_detail: str
    versions: dict[str, str | None]
    model_gguf: str | None = None
    model_dir: str | None = None
    model_ok: bool | None = None
    model_answer: str | None = None
    model_seconds: float | None = None
    model_converted: bool = False  # model_seconds includes the one-time GGUF -> safetensors conversion
    embedder_dir: str | None = None
    embedder_ok: bool | None = None
    embedder_dim: int | None = None
    problems: list[str] = field(default_factory=list)


def _device_detail() -> tuple[str, str]:
    import torch

    from domainllm.defaults import select_device

    device = select_device("auto")
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        detail = f"{torch.cuda.device_count()} x {props.name}, {props.total_memory / 2**30:.0f} GiB"
    elif device == "mps":
        detail = "Apple Metal (MPS)"
    else:
        detail = f"CPU, {torch.get_num_threads()} threads"
    return device, detail


def _try_model(report: InfoReport, question: str) -> None:
    from domainllm.defaults import default_model_cached, default_model_dir, find_default_model_gguf

    try:
        report.model_gguf = str(find_default_model_gguf())
        report.model_converted = not default_model_cached()
        start = time.perf_counter()
        report.model_dir = str(default_model_dir())
        report.model_answer = generate_once(report.model_dir, question)
        report.model_seconds = round(time.perf_counter() - start, 2)
        report.model_ok = bool(report.model_answer.strip())
    except DomainLLMError as exc:
        report.model_ok = False
        report.problems.append(str(exc))


def generate_once(model_dir: str, question: str, max_new_tokens: int = 40) -> str:
    """Greedy answer of the model in ``model_dir`` to one chat-templated question."""
    import torch
    from transformers import AutoModelForCausalLM

    from domainllm.data.formatting import render_prompt
    from domainllm.modeling import load_tokenizer

    tokenizer = load_tokenizer(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    prompt = render_prompt(tokenizer, question, "You are a helpful dentist. Answer in one sentence.")
    inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        out = model.generate(
            **inputs, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id
        )
    return tokenizer.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True).strip()


def _try_embedder(report: InfoReport) -> None:
    from domainllm.defaults import default_embedder_dir

    try:
        report.embedder_dir = str(default_embedder_dir())
        from sentence_transformers import SentenceTransformer

        vector = SentenceTransformer(report.embedder_dir, device="cpu").encode(["How often should I floss?"])
        report.embedder_dim = int(vector.shape[1])
        report.embedder_ok = report.embedder_dim > 0
    except DomainLLMError as exc:
        report.embedder_ok = False
        report.problems.append(str(exc))


def collect_info(load: bool = True, question: str = "How often should I brush my teeth?") -> InfoReport:
    """Device, versions, default model and embedder locations; with ``load``, a real generation and embedding."""
    from domainllm.versions import library_versions

    device, detail = _device_detail()
    report = InfoReport(device=device, device_detail=detail, versions=library_versions())
    if load:
        _try_model(report, question)
        _try_embedder(report)
    else:
        from domainllm.defaults import find_default_embedder, find_default_model_gguf

        for finder, attr in (
            (find_default_model_gguf, "model_gguf"),
            (find_default_embedder, "embedder_dir"),
        ):
            try:
                setattr(report, attr, str(finder()))
            except DomainLLMError as exc:
                report.problems.append(str(exc))
    return report


def report_as_dict(report: InfoReport) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(report)
