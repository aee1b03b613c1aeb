"""What an arm produced: its answers per question and what they cost. Written to disk when the arm ends.

:class:`ArmRun` is the unit of work a comparison keeps: ``compare`` writes one file per finished arm
(``<output_dir>/arms/<arm>.json``), so a comparison killed in its last arm loses only that arm, and
``compare --resume`` reads them back. Scoring and the report are functions of these records and the
test questions, so they can be recomputed without a model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from domainllm.eval.serial import from_data, to_data

__all__ = ["ArmRun", "ArmStatus", "QuestionOutput"]

ArmStatus = Literal["ok", "failed", "skipped"]


@dataclass
class QuestionOutput:
    """What one arm produced for one question."""

    answer: str
    prompt: str | None = None
    chunk_ids: list[str] = field(default_factory=list)
    doc_ids: list[str] = field(default_factory=list)
    latency_s: float = 0.0
    prompt_tokens: int | None = None
    generated_tokens: int | None = None


@dataclass
class ArmRun:
    """The outcome of running one arm over the questions (outputs are empty unless status is ok)."""

    name: str
    kind: str = "local"
    adapter: bool = False
    retrieval: bool = False
    description: str = ""
    k: int | None = None
    # The fine-tuned run whose adapter the arm used (its name in the comparison), None for base arms.
    run: str | None = None
    status: ArmStatus = "ok"
    error: str | None = None
    traceback: str | None = None
    outputs: list[QuestionOutput] = field(default_factory=list)
    wall_s: float = 0.0
    generation_s: float = 0.0
    peak_rss_mb: float | None = None
    cuda_peak_mb: float | None = None
    # Option log-likelihoods per question (None for non-choice questions), filled for local arms.
    logliks: list[list[float] | None] | None = None
    loglik_s: float | None = None
    loglik_error: str | None = None
    # What the answers depend on (config, questions, run, store, chain spec), hashed: a saved arm is
    # reused by ``compare --resume`` only when its key equals the current one.
    key: str = ""
    # How generation ran (e.g. "eager, batch 16, cpu"): recorded so timings can be read in context.
    generation_mode: str | None = None

    @property
    def answers(self) -> list[str]:
        return [o.answer for o in self.outputs]

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        return to_data(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ArmRun:
        return from_data(cls, data)
