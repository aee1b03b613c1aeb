"""The ``training`` section: everything the trainer needs, in the names practitioners use."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from domainllm.config.checks import check_range, fail

__all__ = ["TrainingConfig"]

# TRL 1.x DPOConfig.loss_type values (kept here so a typo fails at config load, not after the model loads).
_DPO_LOSSES = (
    "sigmoid",
    "hinge",
    "ipo",
    "exo_pair",
    "nca_pair",
    "robust",
    "bco_pair",
    "sppo_hard",
    "aot",
    "aot_unpaired",
    "apo_zero",
    "apo_down",
    "discopop",
    "sft",
    "sigmoid_norm",
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
    # Pack several short examples into one sequence (TRL's BFD packing: padding-free, but it changes which examples share a batch).
    packing: bool = False
    # Padding-free batches: each batch's examples in one row, position ids restarted per example, no compute on padding. "auto" = on where the attention implementation is checked to keep the examples apart (the choice is in the manifest); "on" = insist; "off" = padded batches.
    padding_free: Literal["auto", "on", "off"] = "auto"
    # GiB of memory the run may use (the GPU's, or RAM on CPU): domainllm picks the per-device batch size, the accumulation (same effective batch) and how many layers to checkpoint to fit, and records the plan in the manifest. null = the batch settings as given.
    memory_budget_gib: float | None = None
    # Liger's Triton kernels (RMSNorm, RoPE, SwiGLU) on CUDA: "auto" = when liger-kernel is installed (pip install 'domainllm[liger]'); "on" = require it; "off".
    liger_kernel: Literal["auto", "on", "off"] = "auto"
    # torch.compile the model for training: faster steps on a GPU after a slow first one; off by default.
    compile: bool = False
    # Loss on answer tokens only (prompt and system tokens masked). Off = loss on the whole sequence.
    completion_only_loss: bool = True
    # What to train on: QA pairs only; QA pairs plus the domain documents as plain text (continued pretraining); or "raft": each question with retrieved chunks in the prompt (the gold chunk plus distractors, or distractors only), rendered as the raft_arm serves it.
    train_on: Literal["qa", "qa+docs", "raft"] = "qa"
    # RAFT: share of training examples whose prompt keeps the gold chunk (the rest hold distractors only, so the model learns not to trust every passage).
    raft_gold_share: float = 0.8
    # RAFT: the chain spec (arm) whose retrieval prompt the examples are rendered in; it must retrieve.
    raft_arm: str = "finetuned_rag"
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
    # Push RUN/adapter with the model card as README.md to the hub (needs hub_model_id and a login).
    push_to_hub: bool = False
    # Hub repository id for push_to_hub, e.g. "you/dental-smollm2-lora".
    hub_model_id: str | None = None
    # When to push: "every_save" (each checkpoint's adapter as saved, then the final one) or "end" (once, at the end).
    hub_strategy: Literal["every_save", "end"] = "every_save"
    # Data-loading worker processes (0 = in the main process; right for CPU and small data).
    dataloader_num_workers: int = 0
    # Training objective: "sft" (supervised on QA pairs) or "dpo" (preference pairs from data.preferences, TRL's DPOTrainer).
    method: Literal["sft", "dpo"] = "sft"
    # For method dpo: the SFT run directory DPO starts from (its adapter is also the frozen reference), "recipe:<name>" for another recipe of the same comparison, or null = from the base model (reference = adapter disabled).
    from_run: str | None = None
    # DPO's beta: how strongly the policy is held to the reference (TRL's default 0.1; higher = closer).
    dpo_beta: float = 0.1
    # DPO loss (TRL's loss_type): "sigmoid" (the DPO paper), "hinge", "ipo", "robust", ...
    dpo_loss_type: str = "sigmoid"
    # Label smoothing of the DPO loss (conservative DPO / robust loss); 0 = off, must be below 0.5.
    dpo_label_smoothing: float = 0.0

    def __post_init__(self) -> None:
        s = self.section
        if not 0.0 <= self.raft_gold_share <= 1.0:
            fail(
                s,
                "raft_gold_share",
                f"is {self.raft_gold_share}",
                "Use a share between 0 and 1, such as 0.8.",
            )
        if self.learning_rate <= 0:
            fail(s, "learning_rate", f"is {self.learning_rate}", "Use a positive value such as 2e-4.")
        check_range(s, "warmup_ratio", self.warmup_ratio, 0.0, 1.0)
        check_range(s, "weight_decay", self.weight_decay, 0.0, None)
        check_range(s, "max_grad_norm", self.max_grad_norm, 0.0, None)
        check_range(s, "max_truncated_share", self.max_truncated_share, 0.0, 1.0)
        if self.memory_budget_gib is not None and self.memory_budget_gib <= 0:
            fail(
                s,
                "memory_budget_gib",
                f"is {self.memory_budget_gib}",
                "Use a positive number of GiB, or null for no budget.",
            )
        for name in (
            "per_device_batch_size",
            "gradient_accumulation_steps",
            "max_seq_length",
            "logging_steps",
        ):
            if getattr(self, name) < 1:
                fail(s, name, f"is {getattr(self, name)}", "Use an integer >= 1.")
        if self.max_steps == 0 or self.max_steps < -1:
            fail(
                s,
                "max_steps",
                f"is {self.max_steps}",
                "Use -1 (derive from num_epochs) or a positive step count.",
            )
        if self.max_steps == -1 and self.num_epochs <= 0:
            fail(
                s, "num_epochs", f"is {self.num_epochs}", "Use a positive number of epochs or set max_steps."
            )
        if self.eval_strategy == "steps" and self.eval_steps < 1:
            fail(s, "eval_steps", f"is {self.eval_steps}", "Use a positive step interval.")
        if self.early_stopping_patience < 0:
            fail(s, "early_stopping_patience", "is negative", "Use 0 (off) or a positive patience.")
        if self.early_stopping_patience and self.eval_strategy == "no":
            fail(
                s,
                "early_stopping_patience",
                f"is {self.early_stopping_patience} but training.eval_strategy is 'no'",
                "Early stopping needs eval loss: set training.eval_strategy to 'epoch' or 'steps'.",
            )
        if self.method not in ("sft", "dpo"):
            fail(s, "method", f"is {self.method!r}", "Use 'sft' or 'dpo'.")
        if self.from_run is not None and self.method != "dpo":
            fail(
                s,
                "from_run",
                f"is {self.from_run!r} but training.method is {self.method!r}",
                "from_run is where DPO starts: set training.method=dpo, or remove from_run.",
            )
        if self.from_run is not None and self.from_run.startswith("recipe:") and not self.from_run[7:]:
            fail(s, "from_run", "is 'recipe:' with no name", "Use 'recipe:<name>', e.g. recipe:sft.")
        if self.dpo_beta <= 0:
            fail(s, "dpo_beta", f"is {self.dpo_beta}", "Use a positive value such as 0.1.")
        if self.dpo_loss_type not in _DPO_LOSSES:
            fail(
                s,
                "dpo_loss_type",
                f"is {self.dpo_loss_type!r}",
                f"Use one of TRL's DPO losses: {', '.join(_DPO_LOSSES)}.",
            )
        check_range(s, "dpo_label_smoothing", self.dpo_label_smoothing, 0.0, 0.49999)
        for tracker in self.report_to:
            if tracker not in ("wandb", "mlflow", "tensorboard"):
                fail(
                    s,
                    "report_to",
                    f"contains {tracker!r}",
                    "Allowed trackers: wandb, mlflow (tensorboard is always on).",
                )
        if self.push_to_hub and not self.hub_model_id:
            fail(
                s,
                "hub_model_id",
                "is not set but training.push_to_hub is true",
                "Set it to 'user/repo-name'.",
            )
