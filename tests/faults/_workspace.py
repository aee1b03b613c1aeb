"""The fault suite's workspace: one tiny world every case runs against, built once per session.

Not a conftest.py: a second conftest module would shadow ``tests/conftest.py`` for the ``from
conftest import ...`` lines of the unit tests. Each test module gets it through a module fixture
calling :func:`workspace`, which builds it once and hands every module the same one.

Everything a case may be refused over is here, made the way a user would end up with it: a config
file, a tiny domain, a finished run (a real PEFT adapter, see ``tests/unit/_runs.py``), copies with
a truncated adapter, a model folder without weights, a folder of documents with one very long line,
a regular file where a folder is expected. Refusal cases only read it (and prove it, by hashing the
whole tree before and after); cases that legitimately write (a resume, an interrupt) copy what they
need first.
"""

from __future__ import annotations

import atexit
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))  # _runs: the cheap real run

from _cli import close_server
from _runs import make_tiny_run
from conftest import REPO_ROOT, tiny_config_data, write_tiny_domain

LONG_LINE_CHARS = 25_000


@dataclass(frozen=True)
class Workspace:
    root: Path
    model: Path
    config: Path
    domain: Path
    run: Path

    def path(self, name: str) -> Path:
        return self.root / name

    def write_config(self, name: str, **sections: dict) -> Path:
        """Another config file beside cfg.yaml: the base config with single keys of sections changed."""
        data = yaml.safe_load(self.config.read_text(encoding="utf-8"))
        for section, values in sections.items():
            data[section] = {**data.get(section, {}), **values}
        path = self.root / name
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        return path


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


_built: Workspace | None = None


def workspace(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Workspace:
    """The workspace, built on first use."""
    global _built
    if _built is None:
        _built = _build(tmp_path_factory.mktemp("faults"), tiny_model_dir)
        atexit.register(close_server)
    return _built


def _build(root: Path, tiny_model_dir: Path) -> Workspace:
    domain = write_tiny_domain(root / "domain")
    data = tiny_config_data(
        tiny_model_dir,
        domain,
        root,
        training={"max_steps": 200, "save_steps": 2, "eval_strategy": "no", "save_total_limit": 2},
        generation={"max_new_tokens": 4, "batch_size": 2},
        compare={
            "arms": ["prompt_only", "finetuned"],
            "limit": 2,
            "n_bootstrap": 100,
            "loglik_choices": False,
        },
    )
    config = root / "cfg.yaml"
    config.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    run = make_tiny_run(root, tiny_model_dir, domain)

    # The damaged and the incomplete.
    shutil.copytree(run, root / "trunc")
    _truncate(root / "trunc" / "adapter" / "adapter_model.safetensors")
    (root / "noweights").mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny_model_dir / name, root / "noweights" / name)
    shutil.copytree(tiny_model_dir, root / "model-trunc")
    _truncate(root / "model-trunc" / "model.safetensors")
    (root / "a-file").write_text("not a folder\n", encoding="utf-8")
    (root / "merged-done").mkdir()  # a finished merge (its record) that must not be replaced unasked
    (root / "merged-done" / "domainllm-merge.json").write_text('{"passed": true}\n', encoding="utf-8")
    (root / "merged-done" / "model.safetensors").write_bytes(b"merged weights")
    (root / "empty.yaml").write_text("# nothing here yet\n", encoding="utf-8")
    (root / "configs").mkdir()
    shutil.copy(config, root / "configs" / "tiny.yaml")

    # Documents: one ordinary, one a single 25,000-character line (a minified export).
    (root / "longdocs").mkdir()
    (root / "longdocs" / "faq.md").write_text(
        "# FAQ\n\nQuillby Dental is closed on Wednesday.\n", encoding="utf-8"
    )
    words = ("tooth", "enamel", "crown", "filling", "molar", "floss")
    line = " ".join(words[i % len(words)] for i in range(LONG_LINE_CHARS // 5))[:LONG_LINE_CHARS]
    (root / "longdocs" / "export.txt").write_text(line, encoding="utf-8")

    # Data faults: a malformed JSON line, a CSV whose mapped columns are not in its header.
    bad = write_tiny_domain(root / "domain-badline")
    lines = (bad / "qa" / "train.jsonl").read_text(encoding="utf-8").splitlines()
    lines[2] = lines[2][:-10]  # cut off mid-object: line 3 is not JSON
    (bad / "qa" / "train.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "faq.csv").write_text(
        "query,reference,kind\nWho is the orthodontist?,Dr. Ines Marlow,text\nWhen is it closed?,Wednesday,text\n"
        "What does a check-up cost?,€85,text\nHow much notice to cancel?,48 hours,text\n",
        encoding="utf-8",
    )

    # Chain specs for a custom arm that fails while it runs (its prompt exceeds the tiny model's context).
    (root / "chains").mkdir()
    shutil.copy(REPO_ROOT / "chains" / "generic" / "prompt_only.yaml", root / "chains" / "prompt_only.yaml")
    (root / "chains" / "long.yaml").write_text(
        yaml.safe_dump(
            {
                "name": "long",
                "description": "A persona prompt longer than the model's context: fails when it runs.",
                "model": "base",
                "system_prompt": "You are a dentist. " * 400,
                "retrieval": "none",
                "user_template": "{question}",
            }
        ),
        encoding="utf-8",
    )
    return Workspace(root, tiny_model_dir, config, domain, run)
