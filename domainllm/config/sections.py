"""The sections of a domain config that describe the model, the data and retrieval.

Each section is a frozen dataclass; the comment above a field is its documentation (the README's
config reference is generated from it by :mod:`domainllm.configref`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from domainllm.config.checks import check_range, fail

__all__ = [
    "DataConfig",
    "GenerationConfig",
    "LoraConfig",
    "ModelConfig",
    "QuantizationConfig",
    "RetrievalConfig",
]


@dataclass(frozen=True)
class ModelConfig:
    """Which base model to adapt."""

    section: ClassVar[str] = "model"

    # "default" is the embedded SmolLM2-135M-Instruct (offline); else a Hugging Face hub id or a local folder.
    name_or_path: str = "default"
    # Hub revision (branch, tag or commit) for a hub id; ignored for local folders.
    revision: str | None = None
    # Weights dtype when not quantized: "auto" = bfloat16 on CUDA with bf16 support, float32 elsewhere.
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    # Device to train and serve on: "auto" = cuda, then mps, then cpu.
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    # Attention kernel passed to transformers ("sdpa", "eager", "flash_attention_2"); None = library default.
    attn_implementation: str | None = None
    # Allow custom modelling code from the hub (off by default: it runs code you have not read).
    trust_remote_code: bool = False

    def __post_init__(self) -> None:
        if not self.name_or_path.strip():
            fail(
                self.section,
                "name_or_path",
                "is empty",
                "Use 'default' for the embedded model or a hub id/path.",
            )


@dataclass(frozen=True)
class QuantizationConfig:
    """How the frozen base is stored during training (QLoRA) and unmerged serving."""

    section: ClassVar[str] = "quantization"

    # "auto" = 4-bit NF4 on CUDA, none elsewhere; "4bit" also runs on CPU with bitsandbytes >= 0.48.
    mode: Literal["auto", "4bit", "8bit", "none"] = "auto"
    # 4-bit data type: NF4 (the QLoRA paper's choice for normally distributed weights) or FP4.
    quant_type: Literal["nf4", "fp4"] = "nf4"
    # Quantize the quantization constants too (saves ~0.4 bit/parameter).
    double_quant: bool = True
    # Dtype of the matmuls on dequantized weights: "auto" = bfloat16 on CUDA, float32 on CPU.
    compute_dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"


@dataclass(frozen=True)
class LoraConfig:
    """The adapter: what is trained."""

    section: ClassVar[str] = "lora"

    # Rank of the update matrices.
    r: int = 16
    # Scaling numerator; None = 2 * r (the common practice; the update is scaled by alpha / r).
    alpha: int | None = None
    # Dropout on the LoRA input.
    dropout: float = 0.05
    # "attention" (q,k,v,o projections), "all-linear" (every linear layer but the output head), or a list of names.
    target_modules: str | list[str] = "all-linear"
    # Which biases train: "none", "all" or "lora_only".
    bias: Literal["none", "all", "lora_only"] = "none"
    # Rank-stabilised scaling alpha / sqrt(r) (Kalajdzievski 2023): helps at high r.
    use_rslora: bool = False
    # Weight-decomposed LoRA (Liu et al. 2024): often better quality, slower steps.
    use_dora: bool = False

    def __post_init__(self) -> None:
        if self.r < 1:
            fail(self.section, "r", f"is {self.r}", "Use a positive rank such as 8, 16 or 64.")
        if self.alpha is None:
            object.__setattr__(self, "alpha", 2 * self.r)
        elif self.alpha <= 0:
            fail(self.section, "alpha", f"is {self.alpha}", "Use a positive value, commonly 2 * r.")
        check_range(self.section, "dropout", self.dropout, 0.0, 0.9)
        if isinstance(self.target_modules, str) and self.target_modules not in ("attention", "all-linear"):
            fail(
                self.section,
                "target_modules",
                f"is {self.target_modules!r}",
                "Use 'attention', 'all-linear', or a list of module names such as [q_proj, v_proj].",
            )
        if isinstance(self.target_modules, list) and not self.target_modules:
            fail(
                self.section,
                "target_modules",
                "is an empty list",
                "Name at least one module, or use 'all-linear'.",
            )


@dataclass(frozen=True)
class DataConfig:
    """Where the domain's questions and documents come from, and how they are shown to the model."""

    section: ClassVar[str] = "data"

    # Short name of the domain, used in run names and the report.
    name: str = "dental"
    # Loader: "folder" (qa/{train,val,test}.jsonl + docs/), "jsonl", "csv", "hf", "squad", "pubmedqa", "mcq".
    format: Literal["folder", "jsonl", "csv", "hf", "squad", "pubmedqa", "mcq"] = "folder"
    # Dataset location: a folder or file, a hub dataset name for "hf", or "builtin:dental" for the embedded set.
    path: str = "builtin:dental"
    # Explicit split files (override what `path` implies); relative paths are relative to `path`.
    train_file: str | None = None
    val_file: str | None = None
    test_file: str | None = None
    # Folder of domain documents for RAG and for train_on "qa+docs"; None = <path>/docs when it exists.
    docs_dir: str | None = None
    # Field mapping for jsonl/csv/hf/mcq loaders: our name -> the file's name, e.g. {question: query}.
    fields: dict[str, str] = field(default_factory=dict)
    # Hub split names for format "hf".
    hf_splits: dict[str, str] = field(default_factory=dict)
    # Share of train held out as validation when the source has no val split (seeded; ignored, with a log line, when it has one).
    val_fraction: float = 0.0
    # Share of train carved out as the test split when the source has none (seeded); a source with its own test split is an error.
    test_fraction: float = 0.0
    # Unit of the val/test carving: "question" (rows drawn one by one) or "document" (every question of one doc_id lands in the same split, so test facts stay out of training).
    split_by: Literal["question", "document"] = "question"
    # Seed of the val_fraction/test_fraction draw, independent of training.seed so runs with other seeds evaluate on the same split.
    split_seed: int = 0
    # Answers longer than this many words are rejected or skipped (the scorers assume short references).
    max_answer_words: int = 20
    # Rows whose answer is over max_answer_words: "error" refuses the dataset, "skip" leaves them out and reports the count per split.
    on_long_answer: Literal["error", "skip"] = "error"
    # Train only on rows whose provenance `source` is one of these ("original", "paraphrase", "generated"; a row without one is "original"), e.g. [original, paraphrase] on an augmented domain; null = every row. Val and test are never filtered.
    train_sources: list[str] | None = None
    # Preference pairs for training.method dpo: a folder with train.jsonl (and val.jsonl), or one JSONL file (train only); rows prompt/chosen/rejected, plain strings or chat messages. "builtin:dental/preferences" is the shipped dental set; null = none.
    preferences: str | None = None
    # System prompt used in every training example and by the fine-tuned arms at inference.
    system_prompt: str = "You are the assistant of Larkspur Lane Dental. Answer in one short sentence."

    def __post_init__(self) -> None:
        check_range(self.section, "val_fraction", self.val_fraction, 0.0, 0.5)
        check_range(self.section, "test_fraction", self.test_fraction, 0.0, 0.5)
        if self.val_fraction + self.test_fraction >= 0.9:
            fail(
                self.section,
                "test_fraction",
                f"is {self.test_fraction!r} with data.val_fraction = {self.val_fraction!r}, leaving 10% or less to train on",
                "Lower one of them (e.g. test_fraction 0.2 with val_fraction 0.1).",
            )
        if self.split_by not in ("question", "document"):
            fail(
                self.section,
                "split_by",
                f"is {self.split_by!r}",
                "Use 'question', or 'document' to keep each document's questions in one split.",
            )
        if self.max_answer_words < 1:
            fail(
                self.section, "max_answer_words", f"is {self.max_answer_words}", "Use a positive word count."
            )
        if self.train_sources is not None:
            from domainllm.data.records import SOURCE_KINDS

            bad = [k for k in self.train_sources if k not in SOURCE_KINDS]
            if bad or not self.train_sources:
                fail(
                    self.section,
                    "train_sources",
                    f"is {self.train_sources!r}",
                    f"List one or more of {', '.join(SOURCE_KINDS)}, or null for every row.",
                )
        if self.on_long_answer not in ("error", "skip"):
            fail(
                self.section,
                "on_long_answer",
                f"is {self.on_long_answer!r}",
                "Use 'error' to refuse long answers, or 'skip' to leave those rows out and count them.",
            )


@dataclass(frozen=True)
class RetrievalConfig:
    """The knowledge base: embeddings, chunking and the Chroma store."""

    section: ClassVar[str] = "retrieval"

    # "default" = the embedded all-MiniLM-L6-v2 (offline); else a sentence-transformers hub id or local folder.
    embedding_model: str = "default"
    # Chroma persistence folder; None = <compare.output_dir>/../stores/<data.name>.
    store_dir: str | None = None
    # Chroma collection name.
    collection: str = "domainllm"
    # Chunk size and overlap in characters (RecursiveCharacterTextSplitter).
    chunk_size: int = 800
    chunk_overlap: int = 100
    # Chunks retrieved per question.
    k: int = 3
    # "similarity" or "mmr" (maximal marginal relevance: fewer near-duplicate chunks).
    search_type: Literal["similarity", "mmr"] = "similarity"

    def __post_init__(self) -> None:
        if self.chunk_size < 50:
            fail(
                self.section,
                "chunk_size",
                f"is {self.chunk_size}",
                "Use at least 50 characters (800 is typical).",
            )
        if not 0 <= self.chunk_overlap < self.chunk_size:
            fail(self.section, "chunk_overlap", f"is {self.chunk_overlap}", "Use 0 <= overlap < chunk_size.")
        if self.k < 1:
            fail(self.section, "k", f"is {self.k}", "Retrieve at least one chunk.")


@dataclass(frozen=True)
class GenerationConfig:
    """Decoding, identical for every arm so the comparison is fair."""

    section: ClassVar[str] = "generation"

    # Longest answer generated; answers are short, so this bounds latency rather than quality.
    max_new_tokens: int = 40
    # Prompts per generate() call in batched evaluation.
    batch_size: int = 16
    # Decoding strategy of batched generation: "auto" = "compiled" (static KV cache + torch.compile) on CUDA where the model supports it, "eager" elsewhere; or "eager", "static" (static KV cache, not compiled), "compiled". The mode used is recorded in a comparison's results.
    decoding: Literal["auto", "eager", "static", "compiled"] = "auto"
    # Greedy by default (reproducible evaluation); sampling only when you ask for it.
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    repetition_penalty: float = 1.0

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            fail(self.section, "max_new_tokens", f"is {self.max_new_tokens}", "Use a positive token count.")
        if self.batch_size < 1:
            fail(self.section, "batch_size", f"is {self.batch_size}", "Use a positive batch size.")
        if self.temperature <= 0:
            fail(self.section, "temperature", f"is {self.temperature}", "Use a positive temperature.")
