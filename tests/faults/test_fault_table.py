"""The fault table: bad input and damaged files, one real CLI command each, refused the same way.

Every row is a ``domainllm`` command that must be refused: exit 2, its last word on stderr one
``error: ...`` paragraph containing the row's key words (the key, file or path at fault, and the fix),
no traceback, and the workspace (every file and folder, the tiny model's included) byte-for-byte as
it was, with nothing half-written left behind. Cases whose command legitimately writes (a resume, an
interrupt, a comparison) live in the other ``test_fault_*.py`` modules.

Adding a command's bad-input cases: add rows to the section for it below (other issues' commands
``augment``, ``preferences``, ``bench`` and ``train --method dpo`` have their places marked); use
``{ws}``, ``{cfg}``, ``{run}``, ``{model}`` for the workspace's folder, config file, finished run and
tiny model (see ``_workspace.py`` for what else is there).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from _cli import changes, cli, error_line, snapshot, temp_leftovers
from _workspace import Workspace, workspace


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]
    words: tuple[str, ...]  # all must appear in the error paragraph
    code: int = 2
    in_workspace: bool = False  # run with the workspace as working directory (relative paths)
    issue: str = ""  # where the case comes from: "#12.3" = issue 12, item 3; "kept" = already handled well


CASES = [
    # -- config (load_config: any command that reads one) ------------------------------------------
    Case("unknown-key", ("train", "-c", "{cfg}", "--set", "lora.rank=8", "-o", "{ws}/new"),
         ("Unknown config key 'lora.rank'", "Did you mean 'r'", "from --set lora.rank=8"), issue="kept, #12.8"),
    Case("wrong-type", ("train", "-c", "{cfg}", "--set", "lora.r=eight", "-o", "{ws}/new"),
         ("'lora.r' is 'eight'", "from --set lora.r=eight, applied to"), issue="kept, #12.8"),
    Case("invalid-value-from-set", ("compare", "-c", "{cfg}", "--set", "compare.n_bootstrap=5"),
         ("compare.n_bootstrap", "from --set compare.n_bootstrap=5"), issue="#12.8"),
    Case("set-section-as-value", ("train", "-c", "{cfg}", "--set", "lora=8"),
         ("'lora' must be a mapping", "from --set lora=8"), issue="#12.8"),
    Case("missing-config", ("train", "-c", "{ws}/nope.yaml"), ("nope.yaml' does not exist",), issue="kept"),
    Case("config-is-a-directory", ("train", "-c", "{ws}/configs"),
         ("is a directory", "tiny.yaml", "Pass a YAML file"), issue="#12.8"),
    Case("empty-config", ("train", "-c", "{ws}/empty.yaml", "-o", "{ws}/new"),
         ("is empty", "configs/dental.yaml", "omit --config"), issue="#12.4"),
    # -- train ------------------------------------------------------------------------------------
    Case("finished-run-would-be-overwritten", ("train", "-c", "{cfg}", "-o", "{run}"),
         ("already holds a finished run", "--overwrite"), issue="kept"),
    Case("8bit-on-cpu", ("train", "-c", "{cfg}", "--set", "quantization.mode=8bit", "-o", "{ws}/new"),
         ("'quantization.mode' is '8bit'", "CUDA only"), issue="kept"),
    Case("hub-model-offline", ("train", "-c", "{cfg}", "--set", "model.name_or_path=someorg/some-model", "-o", "{ws}/new"),
         ("someorg/some-model", "HF_HUB_OFFLINE", "offline default"), issue="kept"),
    Case("model-folder-without-weights", ("train", "-c", "{cfg}", "--set", "model.name_or_path={ws}/noweights", "-o", "{ws}/new"),
         ("noweights", "holds no weights", "model.safetensors"), issue="#12.3"),
    Case("model-weights-truncated", ("chat", "base", "-c", "{cfg}", "--set", "model.name_or_path={ws}/model-trunc"),
         ("model.safetensors cannot be read", "truncated or damaged"), issue="#12.3"),
    Case("relative-model-path", ("train", "-c", "cfg.yaml", "--set", "model.name_or_path=./models/missing", "-o", "new"),
         ("'./models/missing'", "resolved against the working directory", "models/missing"), in_workspace=True, issue="#12.8"),
    Case("resume-without-a-run", ("train", "-c", "{cfg}", "-o", "{ws}/new", "--resume"),
         ("Nothing to resume",), issue="kept"),
    # -- data (the data stage, through train) -----------------------------------------------------
    Case("malformed-data-line", ("train", "-c", "{cfg}", "--set", "data.path={ws}/domain-badline", "-o", "{ws}/new"),
         ("train.jsonl", "line 3"), issue="kept"),
    Case("mapped-required-column-missing", ("train", "-c", "{cfg}", "--set", "data.format=csv", "--set", "data.path={ws}/faq.csv",
          "--set", "data.fields={question: qry, answer: reference}", "-o", "{ws}/new"),
         ("column 'qry' (data.fields.question) is not in the header (query, reference, kind)",), issue="#12.5"),
    Case("mapped-optional-column-missing", ("train", "-c", "{cfg}", "--set", "data.format=csv", "--set", "data.path={ws}/faq.csv",
          "--set", "data.fields={question: query, answer: reference, doc_id: source_doc}", "-o", "{ws}/new"),
         ("column 'source_doc' (data.fields.doc_id) is not in the header",), issue="#12.5"),
    # -- merge, chat, compare on a damaged run ----------------------------------------------------
    Case("merge-truncated-adapter", ("merge", "{ws}/trunc"),
         ("adapter_model.safetensors' cannot be read", "truncated or damaged", "--overwrite"), issue="#12.3"),
    Case("merge-over-a-finished-merge", ("merge", "{run}", "-o", "{ws}/merged-done"),
         ("already holds a merged model", "--overwrite"), issue="lead"),
    Case("merge-into-a-foreign-folder", ("merge", "{run}", "-o", "{ws}/longdocs", "--overwrite"),
         ("not a merged model domainllm wrote",), issue="lead"),
    Case("merge-into-a-file", ("merge", "{run}", "-o", "{ws}/a-file"), ("is a file",), issue="lead"),
    Case("chat-truncated-adapter", ("chat", "{ws}/trunc"),
         ("adapter_model.safetensors' cannot be read", "truncated or damaged"), issue="#12.3"),
    Case("compare-truncated-adapter", ("compare", "-c", "{cfg}", "--run", "{ws}/trunc", "-o", "{ws}/cmp-new"),
         ("adapter_model.safetensors' cannot be read", "truncated or damaged"), issue="#12.3"),
    Case("chat-unfinished-run", ("chat", "{ws}/domain"), ("has no manifest.json",), issue="kept"),
    # -- augment and RAFT (issue 13) ----------------------------------------------------------------
    Case("augment-bad-generator", ("augment", "-c", "{cfg}", "--generator", "gpt4", "-o", "{ws}/aug-new"),
         ("--generator 'gpt4'", "provider:model"), issue="#13"),
    Case("augment-generator-folder-empty", ("augment", "-c", "{cfg}", "--generator", "files:{ws}/nodocs", "-o", "{ws}/aug-new"),
         ("found neither paraphrases.jsonl nor generated.jsonl",), issue="#13"),
    Case("augment-into-a-foreign-folder", ("augment", "-c", "{cfg}", "--generator", "files:{ws}/longdocs", "-o", "{ws}/longdocs", "--overwrite"),
         ("not written by domainllm augment",), issue="#13"),
    Case("augment-into-a-file", ("augment", "-c", "{cfg}", "--generator", "hf:default", "-o", "{ws}/a-file"),
         ("is a file",), issue="#13"),
    Case("raft-arm-without-retrieval", ("train", "-c", "{cfg}", "--set", "training.train_on=raft", "--set", "training.raft_arm=finetuned", "-o", "{ws}/new"),
         ("training.raft_arm is 'finetuned'", "does not retrieve"), issue="#13"),
    Case("raft-gold-share-out-of-range", ("train", "-c", "{cfg}", "--set", "training.raft_gold_share=2", "-o", "{ws}/new"),
         ("raft_gold_share",), issue="#13"),
    # -- index and the knowledge base -------------------------------------------------------------
    Case("index-store-is-a-file", ("index", "{ws}/domain/docs", "--store", "{ws}/a-file", "-c", "{cfg}"),
         ("'{ws}/a-file' is a file, not a folder", "--store"), issue="#12.3"),
    Case("chat-store-is-a-file", ("chat", "{run}", "--rag", "--store", "{ws}/a-file"),
         ("is a file, not a folder",), issue="#12.3"),
    Case("index-docs-dir-missing", ("index", "{ws}/nodocs", "--store", "{ws}/new-store", "-c", "{cfg}"),
         ("'{ws}/nodocs' (DOCS_DIR) does not exist", "Point DOCS_DIR at a folder"), issue="#12.8"),
    Case("index-damaged-store", ("index", "{ws}/domain/docs", "--store", "{ws}/store-damaged", "-c", "{cfg}"),
         ("store-damaged' cannot be opened", "damaged", "index again"), issue="#12.3"),
    # -- compare ----------------------------------------------------------------------------------
    Case("compare-output-is-a-file", ("compare", "-c", "{cfg}", "--run", "{run}", "-o", "{ws}/a-file"),
         ("is a file", "-o/--output-dir"), issue="#12.1"),
    Case("compare-run-missing", ("compare", "-c", "{cfg}", "--run", "{ws}/no-run", "-o", "{ws}/cmp-new"),
         ("no-run' does not exist",), issue="#12.1"),
    Case("compare-unknown-arm", ("compare", "-c", "{cfg}", "--set", "compare.arms=[prompt_only, dentist]", "-o", "{ws}/cmp-new"),
         ("Unknown arm 'dentist'", "Available arms"), issue="kept"),
    Case("strict-extra-arm-skipped", ("compare", "-c", "{cfg}", "--run", "{run}", "--set", "compare.extra_arms=[openai:gpt-4o-mini]",
          "--strict", "-o", "{ws}/cmp-new"),
         ("compare.strict is on", "extra arm 'openai:gpt-4o-mini' cannot run", "Nothing was run or written"), issue="#12.7"),
    Case("strict-run-unused", ("compare", "-c", "{cfg}", "--run", "{run}", "--set", "compare.arms=[prompt_only]", "--strict",
          "-o", "{ws}/cmp-new"),
         ("compare.strict is on", "no arm uses a fine-tuned run"), issue="#12.7"),
    Case("compare-two-unnamed-runs", ("compare", "-c", "{cfg}", "--run", "{run}", "--run", "{ws}/trunc", "-o", "{ws}/cmp-new"),
         ("two unnamed runs", "--run NAME=PATH"), issue="#13 (multi-run)"),
    Case("compare-named-run-truncated", ("compare", "-c", "{cfg}", "--run", "{run}", "--run", "damaged={ws}/trunc", "-o", "{ws}/cmp-new"),
         ("trunc/adapter/adapter_model.safetensors' cannot be read",), issue="#12.3, #13"),
    Case("compare-run-and-recipe-share-a-name", ("compare", "-c", "{cfg}", "--run", "x={run}", "--set", "compare.recipes={x: {}}",
          "-o", "{ws}/cmp-new"),
         ("'x' is given as a finished run", "compare.recipes"), issue="#13 (multi-run)"),
    Case("compare-resume-and-overwrite", ("compare", "-c", "{cfg}", "--run", "{run}", "-o", "{ws}/cmp-new", "--resume", "--overwrite"),
         ("pass only one of them",), issue="kept"),
    # -- report -----------------------------------------------------------------------------------
    Case("report-folder-missing", ("report", "{ws}/no-comparison"), ("holds no results.json",), issue="#12 (report)"),
    Case("report-not-a-comparison", ("report", "{ws}/domain"), ("holds no results.json", "domainllm compare"), issue="#12 (report)"),
    Case("report-results-not-a-comparison", ("report", "{ws}/results-list"),
         ("is not a results.json", "holds no comparison"), issue="#12 (report)"),
    # -- augment (issue #13) ----------------------------------------------------------------------
    # Rows for `domainllm augment` go here.
    # -- preferences (issue #11) ------------------------------------------------------------------
    Case("preferences-not-a-run", ("preferences", "{ws}/domain"), ("has no manifest.json",), issue="#11"),
    # -- train --method dpo (issue #11) -----------------------------------------------------------
    Case("dpo-no-preferences", ("train", "-c", "{cfg}", "--method", "dpo", "-o", "{ws}/new"),
         ("data.preferences' is not set", "domainllm preferences RUN"), issue="#11"),
    Case("dpo-preferences-missing", ("train", "-c", "{cfg}", "--method", "dpo", "--set", "data.preferences={ws}/nowhere", "-o", "{ws}/new"),
         ("data.preferences", "does not exist"), issue="#11"),
    Case("dpo-bad-loss", ("train", "-c", "{cfg}", "--method", "dpo", "--set", "training.dpo_loss_type=sigmod", "-o", "{ws}/new"),
         ("training.dpo_loss_type' is 'sigmod'", "sigmoid"), issue="#11"),
    Case("dpo-from-recipe-outside-compare", ("train", "-c", "{cfg}", "--from", "recipe:sft", "--set", "data.preferences={ws}/domain/qa/train.jsonl",
          "-o", "{ws}/new"), ("recipe:sft", "domainllm compare"), issue="#11"),
    # -- bench (issue #14) ------------------------------------------------------------------------
    # Rows for `domainllm bench` go here.
]  # fmt: skip


@pytest.fixture(scope="module")
def ws(tmp_path_factory, tiny_model_dir) -> Workspace:
    built = workspace(tmp_path_factory, tiny_model_dir)
    damaged = built.path("store-damaged")
    if not damaged.exists():  # a store whose Chroma database is not a database
        damaged.mkdir()
        (damaged / "domainllm-store.json").write_text(
            '{"format": 1, "status": "complete"}\n', encoding="utf-8"
        )
        (damaged / "chroma.sqlite3").write_bytes(b"not a database\n" * 64)
    listing = built.path("results-list")
    if not listing.exists():
        listing.mkdir()
        (listing / "results.json").write_text("[]\n", encoding="utf-8")
    return built


def _fill(text: str, ws: Workspace) -> str:
    for name, value in (("{ws}", ws.root), ("{cfg}", ws.config), ("{run}", ws.run), ("{model}", ws.model)):
        text = text.replace(name, str(value))
    return text


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_refused_with_one_paragraph_and_nothing_changed(case: Case, ws: Workspace) -> None:
    before = snapshot(ws.root, ws.model)
    result = cli(*(_fill(a, ws) for a in case.argv), cwd=ws.root if case.in_workspace else ws.root.parent)
    assert result.returncode == case.code, str(result)
    message = error_line(result)
    for words in case.words:
        assert _fill(words, ws) in message, f"{words!r} not in: {message}"
    assert result.stdout == "", "stdout is for results; a refused command has none"
    assert changes(before, snapshot(ws.root, ws.model)) == {"added": [], "removed": [], "changed": []}
    assert temp_leftovers(ws.root) == []


def test_debug_shows_the_traceback_of_a_refusal(ws: Workspace) -> None:
    result = cli("--debug", "merge", ws.path("trunc"))
    assert result.returncode != 0
    assert "Traceback" in result.stderr and "ModelError" in result.stderr
