"""Typed configuration: YAML plus ``--set key=value`` overrides, validated once at load.

Every stage takes a :class:`DomainConfig` (or one of its sections). Values are checked when the
config is built, so a typo fails in the first second with the dotted key and the allowed values,
not an hour into training. Sections are frozen dataclasses, each field documented where it is
declared (the README's config reference is generated from these comments' intent).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Union

from domainllm.errors import ConfigError

__all__ = [
    "CompareConfig",
    "DataConfig",
    "DomainConfig",
    "GenerationConfig",
    "LoraConfig",
    "ModelConfig",
    "QuantizationConfig",
    "RetrievalConfig",
    "TrainingConfig",
    "apply_overrides",
    "config_fingerprint",
    "config_from_dict",
    "config_to_dict",
    "load_config",
    "save_config",
]


def _fail(section: str, name: str, problem: str, fix: str) -> typing.NoReturn:
    msg = f"Config key '{section}.{name}' {problem}. {fix}"
    raise ConfigError(msg)


def _check_range(section: str, name: str, value: float, low: float | None, high: float | None) -> None:
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = (
            f"between {low} and {high}"
            if low is not None and high is not None
            else (f">= {low}" if low is not None else f"<= {high}")
        )
        _fail(section, name, f"is {value!r}", f"Use a value {bounds}.")


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
            _fail(
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
            _fail(self.section, "r", f"is {self.r}", "Use a positive rank such as 8, 16 or 64.")
        if self.alpha is None:
            object.__setattr__(self, "alpha", 2 * self.r)
        elif self.alpha <= 0:
            _fail(self.section, "alpha", f"is {self.alpha}", "Use a positive value, commonly 2 * r.")
        _check_range(self.section, "dropout", self.dropout, 0.0, 0.9)
        if isinstance(self.target_modules, str) and self.target_modules not in ("attention", "all-linear"):
            _fail(
                self.section,
                "target_modules",
                f"is {self.target_modules!r}",
                "Use 'attention', 'all-linear', or a list of module names such as [q_proj, v_proj].",
            )
        if isinstance(self.target_modules, list) and not self.target_modules:
            _fail(
                self.section,
                "target_modules",
                "is an empty list",
                "Name at least one module, or use 'all-linear'.",
            )


@dataclass(frozen=True)
class TrainingConfig:
    """The optimisation: everything TRL's SFTConfig needs, in the names practitioners use."""

    section: ClassVar[str] = "training"

    # Where the run directory is written (adapter, config, manifest, metrics, plots).
    output_dir: str = "runs/dental"
    # Peak learning rate (LoRA tolerates 1e-4 to 2e-3; higher for tiny models and few steps).
    learning_rate: float = 2e-4
    # Learning-rate schedule after warmup.
    lr_scheduler: Literal["cosine", "linear", "constant", "constant_with_warmup"] = "cosine"
    # Warmup as a share of all steps; ignored when warmup_steps > 0.
    warmup_ratio: float = 0.03
    # Warmup in optimizer steps; overrides warmup_ratio when > 0.
    warmup_steps: int = 0
    # Passes over the training data (fractions allowed); ignored when max_steps > 0.
    num_epochs: float = 3.0
    # Total optimizer steps; -1 = derive from num_epochs.
    max_steps: int = -1
    # Sequences per device per forward pass.
    per_device_batch_size: int = 8
    # Forward passes per optimizer step (effective batch = batch * accumulation * devices).
    gradient_accumulation_steps: int = 1
    # Optimizer; the paged and 8-bit variants come from bitsandbytes.
    optimizer: Literal[
        "adamw_torch", "adamw_torch_fused", "paged_adamw_8bit", "paged_adamw_32bit", "adamw_8bit"
    ] = "adamw_torch"
    # Decoupled weight decay on the adapter weights.
    weight_decay: float = 0.0
    # Gradient clipping norm (0 = off).
    max_grad_norm: float = 1.0
    # Tokens per example after the chat template; longer examples are truncated (and counted).
    max_seq_length: int = 512
    # Largest share of training examples allowed to be truncated before training refuses to start.
    max_truncated_share: float = 0.05
    # Recompute activations in backward: less memory, ~30% slower steps.
    gradient_checkpointing: bool = False
    # Pack several short examples into one sequence (no padding waste; needs an attention kernel that respects it).
    packing: bool = False
    # Loss on answer tokens only (prompt and system tokens masked). Off = loss on the whole sequence.
    completion_only_loss: bool = True
    # What to train on: QA pairs only, or QA pairs plus the domain documents as plain text (continued pretraining).
    train_on: Literal["qa", "qa+docs"] = "qa"
    # Seed for data order, LoRA init and dropout: same seed, same run.
    seed: int = 42
    # When to compute eval loss on the val split.
    eval_strategy: Literal["epoch", "steps", "no"] = "epoch"
    # Eval every N optimizer steps when eval_strategy is "steps".
    eval_steps: int = 50
    # Save a checkpoint every N steps; 0 = at each evaluation (needed to restore the best).
    save_steps: int = 0
    # Checkpoints kept on disk (the best one is always kept).
    save_total_limit: int = 2
    # Stop after this many evaluations without eval-loss improvement; 0 = never stop early.
    early_stopping_patience: int = 0
    # Restore the checkpoint with the lowest eval loss at the end (the run keeps the best, not the last).
    load_best_model_at_end: bool = True
    # Log train loss, lr and grad norm every N optimizer steps.
    logging_steps: int = 5
    # Trackers besides TensorBoard (always on): "wandb", "mlflow".
    report_to: list[str] = field(default_factory=list)
    # Push the adapter to the hub at each save (needs hub_model_id and a login).
    push_to_hub: bool = False
    # Hub repository id for push_to_hub, e.g. "you/dental-smollm2-lora".
    hub_model_id: str | None = None
    # Which checkpoints are pushed: "every_save", "checkpoint", "all_checkpoints" or "end".
    hub_strategy: Literal["every_save", "checkpoint", "all_checkpoints", "end"] = "every_save"
    # Data-loading worker processes (0 = in the main process; right for CPU and small data).
    dataloader_num_workers: int = 0

    def __post_init__(self) -> None:
        s = self.section
        if self.learning_rate <= 0:
            _fail(s, "learning_rate", f"is {self.learning_rate}", "Use a positive value such as 2e-4.")
        _check_range(s, "warmup_ratio", self.warmup_ratio, 0.0, 1.0)
        _check_range(s, "weight_decay", self.weight_decay, 0.0, None)
        _check_range(s, "max_grad_norm", self.max_grad_norm, 0.0, None)
        _check_range(s, "max_truncated_share", self.max_truncated_share, 0.0, 1.0)
        for name in (
            "per_device_batch_size",
            "gradient_accumulation_steps",
            "max_seq_length",
            "logging_steps",
        ):
            if getattr(self, name) < 1:
                _fail(s, name, f"is {getattr(self, name)}", "Use an integer >= 1.")
        if self.max_steps == 0 or self.max_steps < -1:
            _fail(
                s,
                "max_steps",
                f"is {self.max_steps}",
                "Use -1 (derive from num_epochs) or a positive step count.",
            )
        if self.max_steps == -1 and self.num_epochs <= 0:
            _fail(
                s, "num_epochs", f"is {self.num_epochs}", "Use a positive number of epochs or set max_steps."
            )
        if self.eval_strategy == "steps" and self.eval_steps < 1:
            _fail(s, "eval_steps", f"is {self.eval_steps}", "Use a positive step interval.")
        if self.early_stopping_patience < 0:
            _fail(s, "early_stopping_patience", "is negative", "Use 0 (off) or a positive patience.")
        if self.early_stopping_patience and self.eval_strategy == "no":
            _fail(
                s,
                "early_stopping_patience",
                f"is {self.early_stopping_patience} but training.eval_strategy is 'no'",
                "Early stopping needs eval loss: set training.eval_strategy to 'epoch' or 'steps'.",
            )
        for tracker in self.report_to:
            if tracker not in ("wandb", "mlflow", "tensorboard"):
                _fail(
                    s,
                    "report_to",
                    f"contains {tracker!r}",
                    "Allowed trackers: wandb, mlflow (tensorboard is always on).",
                )
        if self.push_to_hub and not self.hub_model_id:
            _fail(
                s,
                "hub_model_id",
                "is not set but training.push_to_hub is true",
                "Set it to 'user/repo-name'.",
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
    # Share of train held out as validation when the source has no val split (seeded).
    val_fraction: float = 0.0
    # Answers longer than this many words are rejected (the scorers assume short references).
    max_answer_words: int = 20
    # System prompt used in every training example and by the fine-tuned arms at inference.
    system_prompt: str = "You are the assistant of Larkspur Lane Dental. Answer in one short sentence."

    def __post_init__(self) -> None:
        _check_range(self.section, "val_fraction", self.val_fraction, 0.0, 0.5)
        if self.max_answer_words < 1:
            _fail(
                self.section, "max_answer_words", f"is {self.max_answer_words}", "Use a positive word count."
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
            _fail(
                self.section,
                "chunk_size",
                f"is {self.chunk_size}",
                "Use at least 50 characters (800 is typical).",
            )
        if not 0 <= self.chunk_overlap < self.chunk_size:
            _fail(self.section, "chunk_overlap", f"is {self.chunk_overlap}", "Use 0 <= overlap < chunk_size.")
        if self.k < 1:
            _fail(self.section, "k", f"is {self.k}", "Retrieve at least one chunk.")


@dataclass(frozen=True)
class GenerationConfig:
    """Decoding, identical for every arm so the comparison is fair."""

    section: ClassVar[str] = "generation"

    # Longest answer generated; answers are short, so this bounds latency rather than quality.
    max_new_tokens: int = 40
    # Prompts per generate() call in batched evaluation.
    batch_size: int = 16
    # Greedy by default (reproducible evaluation); sampling only when you ask for it.
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    repetition_penalty: float = 1.0

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            _fail(self.section, "max_new_tokens", f"is {self.max_new_tokens}", "Use a positive token count.")
        if self.batch_size < 1:
            _fail(self.section, "batch_size", f"is {self.batch_size}", "Use a positive batch size.")
        if self.temperature <= 0:
            _fail(self.section, "temperature", f"is {self.temperature}", "Use a positive temperature.")


@dataclass(frozen=True)
class CompareConfig:
    """The comparison: which arms, on which split, scored how, written where."""

    section: ClassVar[str] = "compare"

    # Arms to run, by chain spec name in chains/ (prompt_only, rag, finetuned, finetuned_rag, oracle, ...).
    arms: list[str] = field(default_factory=lambda: ["prompt_only", "rag", "finetuned", "finetuned_rag"])
    # Extra arms as LangChain chat models, "provider:model" (e.g. "openai:gpt-4o-mini"); skipped if unavailable.
    extra_arms: list[str] = field(default_factory=list)
    # Add the oracle arm (gold document in the prompt): the upper bound of retrieval.
    oracle: bool = False
    # Folder of chain specs; None = the chains/ shipped with domainllm.
    chains_dir: str | None = None
    # Where report.md, results.json, predictions.jsonl and chart.png are written.
    output_dir: str = "runs/compare-dental"
    # Split to evaluate.
    split: Literal["test", "val"] = "test"
    # Evaluate only the first N questions after a seeded shuffle; 0 = all.
    limit: int = 0
    # Bootstrap resamples for confidence intervals.
    n_bootstrap: int = 2000
    # Seed for bootstrap, shuffles and generation.
    seed: int = 0
    # Relative tolerance for number answers.
    number_rel_tol: float = 0.05
    # Also score choice questions by option log-likelihood (as lm-evaluation-harness does).
    loglik_choices: bool = True
    # Optional LLM-as-judge as "provider:model"; None = no judge.
    judge: str | None = None
    # Example questions shown in the report.
    n_examples: int = 5

    def __post_init__(self) -> None:
        if not self.arms and not self.extra_arms:
            _fail(self.section, "arms", "is empty", "Name at least one arm, e.g. [prompt_only, finetuned].")
        if self.limit < 0:
            _fail(self.section, "limit", f"is {self.limit}", "Use 0 (all questions) or a positive count.")
        if self.n_bootstrap < 100:
            _fail(
                self.section, "n_bootstrap", f"is {self.n_bootstrap}", "Use at least 100 (2000 is typical)."
            )
        for arm in self.extra_arms:
            if ":" not in arm:
                _fail(
                    self.section, "extra_arms", f"contains {arm!r}", "Write extra arms as 'provider:model'."
                )


@dataclass(frozen=True)
class DomainConfig:
    """The whole configuration of a domain: one YAML file."""

    section: ClassVar[str] = ""

    model: ModelConfig = field(default_factory=ModelConfig)
    quantization: QuantizationConfig = field(default_factory=QuantizationConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    data: DataConfig = field(default_factory=DataConfig)
    retrieval: RetrievalConfig = field(default_factory=RetrievalConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    compare: CompareConfig = field(default_factory=CompareConfig)
    # Folder the config file was read from: relative data paths resolve against it. Not a YAML key.
    base_dir: str = field(default=".", compare=False, repr=False)

    def replace(self, **sections: Any) -> DomainConfig:
        """A copy with whole sections swapped, e.g. ``cfg.replace(training=new_training)``."""
        return dataclasses.replace(self, **sections)


# ---------------------------------------------------------------------------------------------------
# Building from plain data, with type checks that name the dotted key.


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    if origin is dict:
        return "a mapping"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Return ``value`` as type ``tp`` or raise ConfigError naming ``key`` and the expected type."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        allowed = typing.get_args(tp)
        if isinstance(value, bool):  # YAML 1.1 reads a bare `no` / `off` as false (eval_strategy: no)
            value = next((a for a in (("yes", "on") if value else ("no", "off")) if a in allowed), value)
        if value in allowed and not isinstance(value, bool):
            return value
        msg = f"Config key '{key}' is {value!r}; allowed values: {', '.join(map(str, allowed))}."
        raise ConfigError(msg)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError as exc:
                errors.append(exc)
        if len(errors) == 1:
            raise errors[0]
        msg = f"Config key '{key}' is {value!r}; expected {_type_name(tp)}."
        raise ConfigError(msg)
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if isinstance(value, str | int | float) and not isinstance(value, bool) and item_tp is str:
            value = [str(value)]  # `--set lora.target_modules=q_proj` means a one-item list
        if not isinstance(value, list | tuple):
            msg = f"Config key '{key}' is {value!r}; expected {_type_name(tp)}."
            raise ConfigError(msg)
        return [_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, Mapping):
            msg = f"Config key '{key}' is {value!r}; expected a mapping like {{question: query}}."
            raise ConfigError(msg)
        return {str(k): str(v) for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key)
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML reads "2e-4" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
    msg = f"Config key '{key}' is {value!r} ({type(value).__name__}); expected {_type_name(tp)}."
    raise ConfigError(msg)


# Names other tools use for our keys: an unknown key that matches one gets a "did you mean".
_SYNONYMS = {
    "rank": "r",
    "lora_r": "r",
    "lora_alpha": "alpha",
    "lora_dropout": "dropout",
    "lr": "learning_rate",
    "epochs": "num_epochs",
    "num_train_epochs": "num_epochs",
    "batch_size": "per_device_batch_size",
    "per_device_train_batch_size": "per_device_batch_size",
    "max_length": "max_seq_length",
    "lr_scheduler_type": "lr_scheduler",
    "optim": "optimizer",
    "model_name": "name_or_path",
    "model": "name_or_path",
    "top_k": "k",
}


def _build(cls: type, data: Any, prefix: str) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        where = f"'{prefix}'" if prefix else "the top level"
        msg = f"Config section {where} must be a mapping of keys to values, got {data!r}."
        raise ConfigError(msg)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init and f.name != "base_dir"}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        key = f"{prefix}.{unknown[0]}" if prefix else unknown[0]
        import difflib

        close = [_SYNONYMS[unknown[0]]] if _SYNONYMS.get(unknown[0]) in fields else []
        close = close or difflib.get_close_matches(unknown[0], list(fields), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        msg = f"Unknown config key '{key}'.{hint} Allowed keys here: {', '.join(sorted(fields))}."
        raise ConfigError(msg)
    kwargs = {
        name: _coerce(value, hints[name], f"{prefix}.{name}" if prefix else name)
        for name, value in data.items()
    }
    return cls(**kwargs)


def config_from_dict(data: Mapping[str, Any] | None, base_dir: str | Path = ".") -> DomainConfig:
    """Build and validate a DomainConfig from nested plain data (a parsed YAML file)."""
    cfg = _build(DomainConfig, dict(data or {}), "")
    return dataclasses.replace(cfg, base_dir=str(base_dir))


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """Plain nested data for YAML/JSON, without the non-key ``base_dir``."""
    data = dataclasses.asdict(cfg)
    data.pop("base_dir", None)
    return data


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` strings to nested data; values are parsed as YAML (``true``, ``2e-4``, ``[a, b]``)."""
    import yaml

    data = json.loads(json.dumps(data))  # deep copy of plain data
    for item in overrides:
        if "=" not in item:
            msg = f"Override '{item}' is not of the form key=value, e.g. --set training.learning_rate=1e-4."
            raise ConfigError(msg)
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        if not all(parts):
            msg = f"Override key '{key}' is malformed; write it as section.key, e.g. lora.r=8."
            raise ConfigError(msg)
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as exc:
            msg = f"Override '{item}': the value is not valid YAML ({exc.__class__.__name__}). Quote it."
            raise ConfigError(msg) from exc
        node = data
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                msg = f"Override '{item}': '{part}' is a value, not a section."
                raise ConfigError(msg)
            node = child
        node[parts[-1]] = value
    return data


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> DomainConfig:
    """Read a YAML config (None = the shipped dental default), apply overrides, validate.

    Relative data paths in the file resolve against the file's folder, so a config and its data can
    move together.
    """
    import yaml

    from domainllm.resources import resource_path

    if path is None:
        path = resource_path("configs") / "dental.yaml"
        if not path.is_file():
            return config_from_dict(apply_overrides({}, overrides))
    path = Path(path)
    if not path.is_file():
        msg = f"Config file '{path}' does not exist. Pass an existing YAML file, or omit --config for the default."
        raise ConfigError(msg)
    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        msg = f"Config file '{path}' is not valid YAML{where}: {getattr(exc, 'problem', exc)}."
        raise ConfigError(msg) from exc
    if not isinstance(data, dict):
        msg = f"Config file '{path}' must hold a mapping of sections (model:, lora:, training:, ...)."
        raise ConfigError(msg)
    data = apply_overrides(data, overrides)
    try:
        return config_from_dict(data, base_dir=path.resolve().parent)
    except ConfigError as exc:
        msg = f"{exc} (in {path})"
        raise ConfigError(msg) from None


def save_config(cfg: DomainConfig, path: str | Path) -> Path:
    """Write the resolved config as YAML: what a run actually used, every default spelled out."""
    import yaml

    path = Path(path)
    path.write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False), encoding="utf-8")
    return path


def config_fingerprint(
    cfg: DomainConfig, sections: Sequence[str] = ("model", "quantization", "lora", "training", "data")
) -> str:
    """A stable hash of the sections that determine a trained adapter (used to reuse a previous run)."""
    data = config_to_dict(cfg)
    picked = {name: data[name] for name in sections}
    picked.get("training", {}).pop("output_dir", None)
    blob = json.dumps(picked, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
