"""Row keys: mapped columns a file lacks are one clear error; provenance keys survive into meta."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from domainllm.config import DataConfig
from domainllm.data import PROVENANCE_FIELDS, load_domain, load_qa
from domainllm.errors import DataError

CSV_TEXT = "query,reference,kind\nWho is the lead dentist?,Dr. Amara Osei,text\nHow much is a check-up?,70 euros,text\n"


def _csv(tmp_path: Path, name: str = "faq.csv", text: str = CSV_TEXT) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _jsonl(tmp_path: Path, rows: list[dict], name: str = "faq.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


JSON_ROWS = [
    {"query": "Who is the lead dentist?", "reference": "Dr. Amara Osei", "kind": "text"},
    {"query": "How much is a check-up?", "reference": "70 euros", "note": "price list"},
]


def _one_error(info: pytest.ExceptionInfo) -> str:
    message = str(info.value)
    assert not message.startswith("Found "), f"expected one problem, got: {message}"
    return message


def test_csv_required_mapped_column_missing_is_one_error_naming_the_header(tmp_path: Path) -> None:
    path = _csv(tmp_path)
    with pytest.raises(DataError) as info:
        load_qa(path, "csv", fields={"question": "qry", "answer": "reference"})
    message = _one_error(info)
    assert message == (
        "faq.csv: column 'qry' (data.fields.question) is not in the header (query, reference, kind). "
        "Fix data.fields or the file. Nothing was loaded."
    ).replace("faq.csv", str(path))


def test_csv_optional_mapped_column_missing_is_an_error_not_a_silent_none(tmp_path: Path) -> None:
    path = _csv(tmp_path)
    fields = {"question": "query", "answer": "reference", "doc_id": "source_doc"}
    with pytest.raises(DataError) as info:
        load_domain(DataConfig(format="csv", path=str(path), fields=fields))
    message = _one_error(info)
    assert "column 'source_doc' (data.fields.doc_id) is not in the header (query, reference, kind)" in message
    assert "Fix data.fields or the file" in message
    # With the column present, doc_ids load (an empty cell is "not given").
    with_col = _csv(tmp_path, "ok.csv", "query,reference,source_doc\nQ one?,A one,kb\nQ two?,A two,\n")
    records = load_qa(with_col, "csv", fields=fields, max_answer_words=None)
    assert [r.doc_id for r in records] == ["kb", None]


def test_jsonl_mapped_columns_use_the_keys_seen_in_the_file(tmp_path: Path) -> None:
    path = _jsonl(tmp_path, JSON_ROWS)
    with pytest.raises(DataError) as info:
        load_qa(path, "jsonl", fields={"question": "qry", "answer": "reference"})
    assert (
        "column 'qry' (data.fields.question) is not a key of any row (keys seen in the file: query, "
        "reference, kind, note)" in _one_error(info)
    )
    with pytest.raises(DataError) as info:
        load_qa(path, "jsonl", fields={"question": "query", "answer": "reference", "doc_id": "source_doc"})
    assert "column 'source_doc' (data.fields.doc_id) is not a key of any row" in _one_error(info)
    # A key only some rows have is fine: JSON rows may leave optional keys out.
    records = load_qa(
        path, "jsonl", fields={"question": "query", "answer": "reference", "answer_type": "kind"}
    )
    assert [r.answer_type for r in records] == ["text", "text"]


def test_optional_column_in_one_split_file_only_is_fine_required_in_every_file(tmp_path: Path) -> None:
    root = tmp_path / "d"
    root.mkdir()
    _csv(root, "train.csv", "query,reference\nQ one?,A one\n")
    _csv(root, "test.csv", "query,reference,seen\nQ two?,A two,true\n")
    fields = {"question": "query", "answer": "reference", "seen_in_train": "seen"}
    ds = load_domain(DataConfig(format="csv", path=str(root), fields=fields))
    assert ds.test[0].seen_in_train is True and ds.train[0].seen_in_train is None
    _csv(root, "train.csv", "qry,reference\nQ one?,A one\n")  # the required column only in test
    with pytest.raises(DataError) as info:
        load_domain(DataConfig(format="csv", path=str(root), fields=fields))
    message = _one_error(info)
    assert "train.csv: column 'query' (data.fields.question) is not in the header (qry, reference)" in message


def test_hf_mapped_column_missing_names_the_dataset_columns(tmp_path: Path) -> None:
    import datasets

    datasets.Dataset.from_dict({"query": ["Q one?"], "reference": ["A one"]}).save_to_disk(
        str(tmp_path / "hf")
    )
    with pytest.raises(DataError) as info:
        load_domain(
            DataConfig(
                format="hf", path=str(tmp_path / "hf"), fields={"question": "query", "answer": "answers"}
            )
        )
    assert (
        "split 'train': column 'answers' (data.fields.answer) is not a column (query, reference)"
        in _one_error(info)
    )


PROVENANCE_ROWS = [
    {"id": "o1", "question": "Who is the lead dentist?", "answer": "Dr. Osei", "source": "original"},
    {
        "id": "p1",
        "question": "Which dentist leads the practice?",
        "answer": "Dr. Osei",
        "source": "paraphrase",
        "parent_id": "o1",
        "generator": "smollm2-135m@temperature=0.7",
        "chunk_id": "staff::0",
        "evidence": [{"chunk_id": "staff::0", "text": "Dr. Amara Osei leads the practice."}],
    },
    {
        "id": "g1",
        "question": "How many chairs does the practice have?",
        "answer": "4",
        "answer_type": "number",
        "source": "generated",
        "generator": "qa-gen v1",
        "chunk_id": "about::2",
        "evidence": "The practice has 4 treatment chairs.",
        "note": "kept too",
    },
]


@pytest.mark.parametrize("fmt", ["folder", "jsonl"])
def test_provenance_keys_survive_loading_into_meta_untouched(tmp_path: Path, fmt: str) -> None:
    root = tmp_path / "d"
    (root / "qa").mkdir(parents=True)
    _jsonl(root / "qa", PROVENANCE_ROWS, "train.jsonl")
    _jsonl(
        root / "qa", [{"id": "t1", "question": "When does the practice open?", "answer": "8am"}], "test.jsonl"
    )
    ds = load_domain(DataConfig(format=fmt, path=str(root)))
    for row, record in zip(PROVENANCE_ROWS, ds.train, strict=True):
        expected = {k: v for k, v in row.items() if k in (*PROVENANCE_FIELDS, "note")}
        assert record.meta == expected
    assert ds.train[1].meta["evidence"] == PROVENANCE_ROWS[1]["evidence"]  # a list of dicts, as written
    assert "source" not in ds.train[0].to_dict()  # provenance is not a record field: not trained or hashed
