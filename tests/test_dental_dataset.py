"""Consistency tests for the embedded Larkspur Lane Dental dataset (data/dental)."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

DATASET_DIR = Path(__file__).parents[1] / "data" / "dental"
SCRIPT = DATASET_DIR / "check_splits.py"


def _load_checker():
    spec = importlib.util.spec_from_file_location("dental_check_splits", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def checker():
    return _load_checker()


@pytest.fixture()
def dataset_copy(tmp_path: Path) -> Path:
    dst = tmp_path / "dental"
    shutil.copytree(DATASET_DIR, dst, ignore=shutil.ignore_patterns("__pycache__"))
    return dst


def _rewrite_line(path: Path, lineno: int, transform) -> None:
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[lineno - 1] = transform(lines[lineno - 1])
    path.write_text("".join(lines), encoding="utf-8")


def test_dataset_passes_check(checker):
    counts = checker.check(DATASET_DIR)
    assert counts["docs"] >= 40
    assert counts["total"]["rows"] >= 400
    test = counts["splits"]["test"]
    assert test["rows"] >= 100
    assert test["seen_true"] + test["seen_false"] == test["rows"]
    assert 0.25 <= counts["test_unseen_share"] <= 0.42
    assert abs(counts["test_unseen_share"] - 1 / 3) < 0.05
    assert counts["splits"]["train"]["seen_true"] == counts["splits"]["train"]["seen_false"] == 0
    assert min(counts["questions_per_doc"].values()) >= 4
    for split in ("train", "val", "test"):
        s = counts["splits"][split]
        assert s["text"] + s["number"] + s["choice"] == s["rows"]
        assert s["number"] > 0 and s["choice"] > 0


def test_unknown_doc_id_is_reported(checker, dataset_copy):
    path = dataset_copy / "qa" / "test.jsonl"

    def corrupt(line: str) -> str:
        row = json.loads(line)
        row["doc_id"] = "no-such-document"
        return json.dumps(row, ensure_ascii=False) + "\n"

    _rewrite_line(path, 3, corrupt)
    with pytest.raises(ValueError) as exc:
        checker.check(dataset_copy)
    msg = str(exc.value)
    assert "qa/test.jsonl:3" in msg
    assert "doc_id" in msg and "no-such-document" in msg


def test_duplicate_id_is_reported(checker, dataset_copy):
    first_train_id = json.loads(
        (dataset_copy / "qa" / "train.jsonl").read_text(encoding="utf-8").splitlines()[0]
    )["id"]
    path = dataset_copy / "qa" / "val.jsonl"

    def corrupt(line: str) -> str:
        row = json.loads(line)
        row["id"] = first_train_id
        return json.dumps(row, ensure_ascii=False) + "\n"

    _rewrite_line(path, 5, corrupt)
    with pytest.raises(ValueError) as exc:
        checker.check(dataset_copy)
    msg = str(exc.value)
    assert "qa/val.jsonl:5" in msg
    assert "duplicate id" in msg and first_train_id in msg


def test_malformed_json_line_is_reported(checker, dataset_copy):
    path = dataset_copy / "qa" / "train.jsonl"
    _rewrite_line(path, 7, lambda line: line.rstrip("\n")[:-5] + "\n")
    with pytest.raises(ValueError) as exc:
        checker.check(dataset_copy)
    msg = str(exc.value)
    assert "qa/train.jsonl:7" in msg
    assert "invalid JSON" in msg


def test_readme_counts_mismatch_is_reported(checker, dataset_copy):
    readme = dataset_copy / "README.md"
    text = readme.read_text(encoding="utf-8")
    lines = text.splitlines()
    idx = next(i for i, line in enumerate(lines) if line.startswith("| test |"))
    cells = lines[idx].split("|")
    cells[2] = f" {int(cells[2]) + 1} "
    lines[idx] = "|".join(cells)
    readme.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ValueError) as exc:
        checker.check(dataset_copy)
    assert f"README.md:{idx + 1}" in str(exc.value)


def test_cli_exit_codes(checker, dataset_copy, capsys):
    assert checker.main(["check_splits.py", str(dataset_copy)]) == 0
    assert "OK" in capsys.readouterr().out
    (dataset_copy / "docs" / "opening-hours.md").unlink()
    assert checker.main(["check_splits.py", str(dataset_copy)]) == 2  # bad input, as the domainllm CLI
    assert "opening-hours" in capsys.readouterr().err


def test_the_library_loads_the_shipped_dental_domain():
    """The embedded domain goes through the same loader users' data does, with no errors."""
    from domainllm.config import load_config
    from domainllm.data import load_domain

    cfg = load_config()
    dataset = load_domain(cfg.data, cfg.base_dir)
    assert (len(dataset.train), len(dataset.val), len(dataset.test)) == (302, 54, 116)
    doc_ids = {d.metadata["doc_id"] for d in dataset.documents}
    assert len(doc_ids) == 45
    assert all(r.doc_id in doc_ids for r in dataset.train + dataset.val + dataset.test)
    assert all(r.seen_in_train is not None for r in dataset.test)
    assert {r.answer_type for r in dataset.test} == {"text", "number", "choice"}
