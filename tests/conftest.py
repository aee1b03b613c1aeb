"""Shared fixtures: a tiny real Llama with the real SmolLM2 tokenizer, and a tiny QA domain.

The tiny model is a genuine ``LlamaForCausalLM`` built from a config (2 layers, hidden size 64), so
training, adapters, merging and LangChain chains run for real in seconds on a CPU; it shares the
default model's tokenizer and chat template, so formatting is exercised exactly as in production.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")  # chromadb
os.environ.setdefault("WANDB_MODE", "disabled")

REPO_ROOT = Path(__file__).resolve().parents[1]
TESTS_DIR = Path(__file__).resolve().parent
SHARED_PUBMEDQA = REPO_ROOT.parent / "shared" / "datasets" / "pubmedqa"

# A tiny domain: facts a base model cannot know, repeated so a few LoRA steps visibly learn them.
TINY_FACTS = [
    ("How much does a check-up cost at Quillby Dental?", "€85", "prices"),
    ("Who is the orthodontist at Quillby Dental?", "Dr. Ines Marlow", "staff"),
    ("On which day is Quillby Dental closed?", "Wednesday", "hours"),
    ("How much notice does Quillby Dental need to cancel?", "48 hours", "policies"),
]
TINY_DOCS = {
    "prices": "# Prices\n\nA check-up at Quillby Dental costs €85 and takes 30 minutes. A scale and polish costs €60.",
    "staff": "# Staff\n\nDr. Ines Marlow is the orthodontist at Quillby Dental. Dr. Tomas Reyes is the oral surgeon.",
    "hours": "# Opening hours\n\nQuillby Dental is open Monday, Tuesday, Thursday and Friday. It is closed on Wednesday.",
    "policies": "# Policies\n\nQuillby Dental needs 48 hours notice to cancel. Late cancellations cost €30.",
}


@pytest.fixture(scope="session")
def smollm_dir() -> Path:
    """The embedded default model converted to safetensors (once per machine, in the user cache)."""
    from domainllm.defaults import default_model_dir

    return default_model_dir()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, smollm_dir: Path) -> Path:
    """A 2-layer Llama with random weights and the SmolLM2 tokenizer, saved as a model folder."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(smollm_dir)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    path = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def write_tiny_domain(root: Path, repeats: int = 6) -> Path:
    """Write a tiny domain folder (qa/{train,val,test}.jsonl + docs/) and return it."""
    (root / "qa").mkdir(parents=True, exist_ok=True)
    (root / "docs").mkdir(parents=True, exist_ok=True)
    for doc_id, text in TINY_DOCS.items():
        (root / "docs" / f"{doc_id}.md").write_text(text + "\n", encoding="utf-8")
    train, val, test = [], [], []
    for i, (question, answer, doc_id) in enumerate(TINY_FACTS):
        for r in range(repeats):
            q = question if r == 0 else f"{question} (asked again {r})"
            train.append(
                {
                    "id": f"train-{i}-{r}",
                    "question": q,
                    "answer": answer,
                    "aliases": [],
                    "answer_type": "text",
                    "doc_id": doc_id,
                }
            )
        val.append(
            {
                "id": f"val-{i}",
                "question": "Please tell me: " + question[0].lower() + question[1:],
                "answer": answer,
                "aliases": [],
                "answer_type": "text",
                "doc_id": doc_id,
                "seen_in_train": True,
            }
        )
        test.append(
            {
                "id": f"test-{i}",
                "question": "I wonder, " + question[0].lower() + question[1:],
                "answer": answer,
                "aliases": [],
                "answer_type": "text",
                "doc_id": doc_id,
                "seen_in_train": True,
            }
        )
    for name, rows in (("train", train), ("val", val), ("test", test)):
        with open(root / "qa" / f"{name}.jsonl", "w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row) + "\n")
    return root


@pytest.fixture
def ctrl_c_enabled():
    """Ctrl-C (SIGINT) raises KeyboardInterrupt here and reaches the processes this test starts.

    A shell starts a background job (``make test &``, a nohup'd CI script) with SIGINT ignored, and
    every child inherits that, so a test of Ctrl-C would see it ignored. A handled signal is reset to
    the default on exec, so installing Python's own handler fixes this process and its children."""
    import signal

    before = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before if before is not None else signal.SIG_DFL)


@pytest.fixture
def tiny_domain(tmp_path: Path) -> Path:
    """A tiny QA domain folder in tmp_path."""
    return write_tiny_domain(tmp_path / "domain")


def tiny_config_data(model_dir: Path, domain_dir: Path, root: Path, **sections: dict) -> dict:
    """The tiny config as a dict, paths under ``root``; ``sections`` update single keys of a section
    (the GPU tests turn the same config into a CUDA QLoRA one)."""
    data: dict = {
        "model": {"name_or_path": str(model_dir), "device": "cpu"},
        "quantization": {"mode": "none"},
        "lora": {"r": 8, "target_modules": "all-linear", "dropout": 0.0},
        "training": {
            "output_dir": str(root / "run"),
            "learning_rate": 5e-3,
            "num_epochs": 3,
            "per_device_batch_size": 4,
            "logging_steps": 1,
            "warmup_ratio": 0.0,
            "max_seq_length": 128,
            "seed": 0,
        },
        "data": {
            "name": "tiny",
            "format": "folder",
            "path": str(domain_dir),
            "system_prompt": "You are the assistant of Quillby Dental.",
        },
        "retrieval": {"store_dir": str(root / "store"), "k": 2, "chunk_size": 200, "chunk_overlap": 20},
        "generation": {"max_new_tokens": 8, "batch_size": 4},
        "compare": {"output_dir": str(root / "compare"), "n_bootstrap": 200},
    }
    for name, values in sections.items():
        data[name] = {**data[name], **values}
    return data


@pytest.fixture
def tiny_config(tiny_model_dir: Path, tiny_domain: Path, tmp_path: Path):
    """A DomainConfig that trains the tiny model on the tiny domain in seconds on a CPU."""
    from domainllm.config import config_from_dict

    return config_from_dict(tiny_config_data(tiny_model_dir, tiny_domain, tmp_path))
