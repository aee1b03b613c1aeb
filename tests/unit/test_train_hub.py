"""The hub push: RUN/adapter with domainllm's model card, never checkpoints/ or TensorBoard events.

A hub cannot exist here, so ``huggingface_hub.HfApi.create_repo`` and ``upload_folder`` are patched:
the fakes record what they are handed and list the files the real ``upload_folder`` would send (the
hub client's own ``filter_repo_objects`` over the folder with the patterns it was given). Training is
real (tiny TRL runs of a few steps).
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from conftest import write_tiny_domain
from test_train_run import tiny_train_config

REPO = "someone/quillby-lora"
ADAPTER_FILES = {
    "adapter_config.json",
    "adapter_model.safetensors",
    "chat_template.jinja",
    "tokenizer.json",
    "tokenizer_config.json",
}


class FakeHub:
    """Stands in for the hub behind HfApi: records every call, optionally fails the uploads."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.fail = fail
        self.repos: list[tuple[str, dict]] = []
        self.uploads: list[dict] = []

    def install(self, monkeypatch: pytest.MonkeyPatch) -> FakeHub:
        from huggingface_hub import HfApi

        hub = self

        def create_repo(self, repo_id, **kwargs):
            hub.repos.append((repo_id, kwargs))
            return SimpleNamespace(repo_id=repo_id)

        def upload_folder(self, *, repo_id, folder_path, **kwargs):
            from pathlib import Path

            from huggingface_hub.utils import filter_repo_objects

            folder = Path(folder_path)
            listing = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
            sent = list(
                filter_repo_objects(
                    listing,
                    allow_patterns=kwargs.get("allow_patterns"),
                    ignore_patterns=kwargs.get("ignore_patterns"),
                )
            )
            readme = (folder / "README.md").read_text() if "README.md" in sent else None
            hub.uploads.append(
                {"repo_id": repo_id, "folder": folder, "files": set(sent), "readme": readme, **kwargs}
            )
            if hub.fail is not None:
                raise hub.fail
            n = len(hub.uploads)
            return SimpleNamespace(oid=f"{n:040x}", commit_url=f"https://huggingface.co/{repo_id}/commit/{n}")

        monkeypatch.setattr(HfApi, "create_repo", create_repo)
        monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
        monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # domainllm refuses a push while offline
        return self


def _config(tiny_model_dir, root, **training):
    domain = write_tiny_domain(root / "domain")
    return tiny_train_config(
        tiny_model_dir, domain, root / "run", push_to_hub=True, hub_model_id=REPO, **training
    )


def test_every_save_pushes_each_checkpoints_adapter_then_the_adapter_folder_with_our_card(
    tiny_model_dir, tmp_path, monkeypatch
):
    from domainllm.rundir import RunDir
    from domainllm.training import train

    hub = FakeHub().install(monkeypatch)
    cfg = _config(
        tiny_model_dir, tmp_path, hub_strategy="every_save", max_steps=4, eval_strategy="steps", eval_steps=2
    )
    run = train(cfg)

    assert [u["folder"] for u in hub.uploads] == [
        run / "checkpoints" / "checkpoint-2",
        run / "checkpoints" / "checkpoint-4",
        run / "adapter",
    ]
    assert [r for r, _ in hub.repos] == [REPO] * 3 and all(kw.get("exist_ok") for _, kw in hub.repos)
    *saves, final = hub.uploads
    for upload in saves:  # the checkpoint's adapter and tokenizer; no optimizer state, no PEFT template card
        assert upload["files"] == ADAPTER_FILES, upload["files"]
        assert "step" in upload["commit_message"]
    assert final["repo_id"] == REPO and final["files"] == ADAPTER_FILES | {"README.md"}
    # Nothing else of the run directory is ever handed over.
    assert all(u["folder"].parent.name != "tensorboard" and u["folder"] != run for u in hub.uploads)
    assert (run / "tensorboard").is_dir() and any((run / "checkpoints").glob("checkpoint-*/optimizer.pt"))
    assert (run / "adapter" / "training_args.bin").is_file()  # there, but not sent
    # The README.md uploaded is domainllm's model card for this run, naming the repo.
    card = final["readme"]
    assert card == (run / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: peft\n") and "Status: **complete**" in card
    assert f'PeftModel.from_pretrained(base, "{REPO}")' in card and f"huggingface.co/{REPO}" in card
    manifest = RunDir.open(run).read_manifest()
    assert f"{manifest['eval_loss_before']:.4f}" in card
    assert manifest["status"] == "complete"
    hub_record = manifest["hub"]
    assert hub_record["status"] == "pushed" and hub_record["repo_id"] == REPO and hub_record["error"] is None
    assert set(hub_record["files"]) == final["files"] and hub_record["commit"] == f"{3:040x}"
    assert hub_record["strategy"] == "every_save"


def test_a_failed_push_leaves_the_run_complete_records_the_error_and_can_be_retried(
    tiny_model_dir, tmp_path, monkeypatch
):
    from domainllm.errors import TrainingError
    from domainllm.rundir import RunDir
    from domainllm.training import push_run, train

    hub = FakeHub(fail=ConnectionError("hub.example: connection refused")).install(monkeypatch)
    cfg = _config(tiny_model_dir, tmp_path, hub_strategy="end", max_steps=2, eval_strategy="no")
    with pytest.raises(TrainingError) as info:
        train(cfg)
    text = str(info.value)
    run = tmp_path / "run"
    assert "is complete" in text and REPO in text and "connection refused" in text
    assert f"push_run('{run}', '{REPO}')" in text  # how to push again
    assert [u["folder"] for u in hub.uploads] == [run / "adapter"]  # "end": no checkpoint pushes
    manifest = RunDir.open(run).read_manifest()  # still a complete, servable run
    assert manifest["status"] == "complete" and manifest["error"] is None
    assert manifest["hub"]["status"] == "failed" and "ConnectionError" in manifest["hub"]["error"]
    assert manifest["global_step"] == 2 and (run / "adapter" / "adapter_model.safetensors").is_file()

    hub.fail = None
    record = push_run(run)
    assert record["status"] == "pushed" and hub.uploads[-1]["files"] == ADAPTER_FILES | {"README.md"}
    after = json.loads((run / "manifest.json").read_text())
    assert after["status"] == "complete" and after["hub"]["status"] == "pushed"


def test_push_while_offline_is_refused_before_anything_is_written(tiny_model_dir, tmp_path, monkeypatch):
    from domainllm.errors import TrainingError
    from domainllm.training import train

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(TrainingError, match="HF_HUB_OFFLINE"):
        train(_config(tiny_model_dir, tmp_path))
    assert not (tmp_path / "run").exists()
