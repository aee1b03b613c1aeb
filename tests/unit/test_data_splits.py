"""One-file datasets: carved test/val splits, split by document, skipped long answers, the leakage report."""

from __future__ import annotations

import csv
import json
import logging
import random
from pathlib import Path

import pytest

from domainllm.config import DataConfig, load_config
from domainllm.data import LeakageReport, leakage_report, load_domain, load_qa, near_duplicates
from domainllm.errors import ConfigError, DataError

WORDS = [
    "molar", "crown", "enamel", "gum", "floss", "brace", "filling", "implant", "veneer", "root",
    "plaque", "bridge", "retainer", "whitening", "x-ray", "sealant", "denture", "canal", "mouthguard",
    "abscess", "wisdom", "bite", "jaw", "cavity", "tartar", "fluoride", "nerve", "pulp", "socket", "gingivitis",
]  # fmt: skip


def question(i: int) -> str:
    """Distinct questions: any two share at most half their tokens (Jaccard well under 0.8)."""
    return f"What is fact {i} about the {WORDS[i % len(WORDS)]}?"


def rows(n: int, docs: int | None = None, start: int = 0) -> list[dict]:
    out = []
    for i in range(start, start + n):
        row = {"id": f"q{i}", "question": question(i), "answer": f"answer {i}"}
        if docs:
            row["doc_id"] = f"doc{i % docs}"
        out.append(row)
    return out


def write_jsonl(path: Path, items: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in items), encoding="utf-8")
    return path


def write_csv(path: Path, items: list[dict]) -> Path:
    columns = list(dict.fromkeys(k for r in items for k in r))
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, columns)
        writer.writeheader()
        writer.writerows(items)
    return path


def write_docs(folder: Path, doc_ids: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for doc_id in doc_ids:
        (folder / f"{doc_id}.md").write_text(f"# {doc_id}\n\nFacts of {doc_id}.\n", encoding="utf-8")
    return folder


def ids(records) -> list[str]:
    return [r.id for r in records]


# --------------------------------------------------------------------------------------------------
# test_fraction / val_fraction on one file


def test_test_fraction_carves_a_seeded_test_split_from_one_jsonl_file(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "faq.jsonl", rows(50))
    cfg = DataConfig(format="jsonl", path=str(path), test_fraction=0.2, val_fraction=0.1)
    first, again = load_domain(cfg), load_domain(cfg)
    assert (len(first.train), len(first.val), len(first.test)) == (35, 5, 10)  # shares of the 50 rows
    assert first.carved == ("val", "test")
    assert ids(first.test) == ids(again.test) and ids(first.val) == ids(again.val)
    assert sorted(ids(first.train) + ids(first.val) + ids(first.test)) == sorted(f"q{i}" for i in range(50))
    assert ids(first.train) == [f"q{i}" for i in range(50) if f"q{i}" in set(ids(first.train))]  # file order
    other = load_domain(DataConfig(format="jsonl", path=str(path), test_fraction=0.2, split_seed=1))
    assert len(other.test) == 10 and set(ids(other.test)) != set(ids(first.test))
    # Test depends on the seed and test_fraction only: val_fraction never moves a question in or out.
    no_val = load_domain(DataConfig(format="jsonl", path=str(path), test_fraction=0.2))
    assert ids(no_val.test) == ids(first.test) and not no_val.val and no_val.carved == ("test",)


def test_val_fraction_alone_draws_the_same_val_split_as_before(tmp_path: Path) -> None:
    """split_seed 0 with only val_fraction is the draw domainllm always made (existing runs keep their val)."""
    path = write_jsonl(tmp_path / "faq.jsonl", rows(20))
    ds = load_domain(DataConfig(format="jsonl", path=str(path), val_fraction=0.25))
    expected = sorted(random.Random(0).sample(range(20), 5))
    assert ids(ds.val) == [f"q{i}" for i in expected] and not ds.test and ds.carved == ("val",)


def test_test_fraction_on_a_source_with_its_own_test_split_is_an_error(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "d" / "train.jsonl", rows(10))
    write_jsonl(tmp_path / "d" / "test.jsonl", rows(2, start=10))
    with pytest.raises(DataError) as info:
        load_domain(DataConfig(format="jsonl", path=str(tmp_path / "d"), test_fraction=0.2))
    message = str(info.value)
    assert "data.test_fraction' is 0.2" in message and "already has a test split (2 questions" in message
    assert "test.jsonl line 1" in message and "Remove data.test_fraction" in message


def test_too_few_questions_to_carve_is_an_error(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "one.jsonl", rows(1))
    with pytest.raises(DataError, match=r"1 training questions: too few to carve data\.test_fraction"):
        load_domain(DataConfig(format="jsonl", path=str(path), test_fraction=0.2))


def test_load_qa_carves_and_skips_like_load_domain(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "faq.jsonl", [*rows(9), _long(0)])
    options = {"test_fraction": 0.3, "on_long_answer": "skip"}
    assert sorted(ids(load_qa(path, "jsonl", split=None, **options))) == sorted(f"q{i}" for i in range(9))
    ds = load_domain(DataConfig(format="jsonl", path=str(path), **options))
    assert ids(load_qa(path, "jsonl", split="train", **options)) == ids(ds.train)
    assert len(ds.train) + len(ds.test) == 9 and sum(map(len, ds.dropped.values())) == 1


# --------------------------------------------------------------------------------------------------
# split_by: document


def _doc_sets(ds) -> dict[str, set[str]]:
    return {name: {r.doc_id for r in ds.split(name)} for name in ("train", "val", "test")}


def test_split_by_document_keeps_each_documents_questions_in_one_split(tmp_path: Path) -> None:
    # 12 documents with 1..4 questions each (unequal groups), as a CSV file with a docs folder.
    items = []
    for d in range(12):
        for _ in range(1 + d % 4):
            i = len(items)
            items.append(
                {"id": f"q{i}", "question": question(i), "answer": f"answer {i}", "doc_id": f"doc{d}"}
            )
    path = write_csv(tmp_path / "faq.csv", items)
    docs = write_docs(tmp_path / "docs", [f"doc{d}" for d in range(12)])
    for seed in range(8):
        cfg = DataConfig(
            format="csv",
            path=str(path),
            docs_dir=str(docs),
            test_fraction=0.25,
            val_fraction=0.15,
            split_by="document",
            split_seed=seed,
        )
        ds = load_domain(cfg)
        sets = _doc_sets(ds)
        assert not sets["train"] & sets["test"] and not sets["train"] & sets["val"]
        assert not sets["val"] & sets["test"]
        assert sets["test"] and sets["val"] and sets["train"]
        assert len(ds.train) + len(ds.val) + len(ds.test) == len(items)
        assert abs(len(ds.test) - 0.25 * len(items)) <= 4  # whole documents: close to the target, not exact
        assert ds.leakage.shared_documents == {"val": 0, "test": 0}
    same = load_domain(cfg)
    assert ids(same.test) == ids(ds.test)
    # By question, documents do end up on both sides (what split_by: document exists to prevent).
    by_question = load_domain(
        DataConfig(format="csv", path=str(path), docs_dir=str(docs), test_fraction=0.25)
    )
    assert by_question.leakage.shared_documents["test"] > 0


def test_split_by_document_on_squad_keeps_paragraphs_whole(tmp_path: Path) -> None:
    articles = []
    n = 0
    for a in range(4):
        paragraphs = []
        for p in range(3):
            qas = []
            for _ in range(1 + (a + p) % 3):
                qas.append({"id": f"s{n}", "question": question(n), "answers": [{"text": f"answer {n}"}]})
                n += 1
            paragraphs.append({"context": f"Paragraph {p} of article {a}: answer text.", "qas": qas})
        articles.append({"title": f"Article {a}", "paragraphs": paragraphs})
    path = tmp_path / "squad.json"
    path.write_text(json.dumps({"version": "v2.0", "data": articles}), encoding="utf-8")
    ds = load_domain(DataConfig(format="squad", path=str(path), test_fraction=0.3, split_by="document"))
    sets = _doc_sets(ds)
    assert ds.test and not sets["train"] & sets["test"]
    assert len(ds.train) + len(ds.test) == n and ds.carved == ("test",)
    assert all(r.context.startswith("Paragraph") for r in ds.test)


def test_split_by_document_needs_a_doc_id_on_every_question(tmp_path: Path) -> None:
    items = rows(6, docs=3)
    del items[4]["doc_id"]
    path = write_jsonl(tmp_path / "faq.jsonl", items)
    with pytest.raises(DataError) as info:
        load_domain(DataConfig(format="jsonl", path=str(path), test_fraction=0.3, split_by="document"))
    message = str(info.value)
    assert "data.split_by' is 'document', but 1 of 6 training questions have no doc_id" in message
    assert (
        "faq.jsonl line 5" in message and "data.fields.doc_id" in message and "split_by: question" in message
    )


# --------------------------------------------------------------------------------------------------
# on_long_answer


def _long(i: int, n_words: int = 25) -> dict:
    return {
        "id": f"long{i}",
        "question": f"Explain the long topic {WORDS[i]} please?",
        "answer": "word " * n_words,
    }


def test_on_long_answer_skip_drops_exactly_the_long_rows_and_reports_them(tmp_path: Path, caplog) -> None:
    root = tmp_path / "d"
    write_jsonl(root / "train.jsonl", [*rows(8), _long(0), _long(1), _long(2, 21)])
    write_jsonl(root / "test.jsonl", [*rows(3, start=20), _long(3)])
    cfg = DataConfig(format="jsonl", path=str(root), on_long_answer="skip")
    with caplog.at_level(logging.WARNING, logger="domainllm"):
        ds = load_domain(cfg)
    assert ids(ds.train) == [f"q{i}" for i in range(8)] and ids(ds.test) == ["q20", "q21", "q22"]
    assert ds.dropped == {"train": ["long0", "long1", "long2"], "test": ["long3"]}
    summary = ds.summary()
    assert summary["dropped"]["train"] == {"count": 3, "first_ids": ["long0", "long1", "long2"]}
    assert summary["sizes"] == {"train": 8, "val": 0, "test": 3}
    json.dumps(summary)  # a manifest can store it as it is
    warning = next(r.getMessage() for r in caplog.records if "Skipped" in r.getMessage())
    assert warning.startswith("Skipped 4 question(s) whose answer is longer than data.max_answer_words = 20")
    assert (
        "train 3, test 1" in warning and "'long0' (25 words, " in warning and "train.jsonl line 9" in warning
    )
    # A 21-word answer is long, a 20-word one is not.
    assert (
        len(
            load_domain(
                DataConfig(format="jsonl", path=str(root), max_answer_words=25, on_long_answer="skip")
            ).train
        )
        == 11
    )


def test_on_long_answer_error_still_refuses_naming_file_line_and_field(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "faq.jsonl", [*rows(3), _long(0)])
    with pytest.raises(DataError) as info:
        load_domain(DataConfig(format="jsonl", path=str(path)))
    message = str(info.value)
    assert "faq.jsonl line 4, field 'answer': has 25 words, more than data.max_answer_words = 20" in message
    assert "data.on_long_answer: skip" in message


def test_skipping_after_carving_keeps_the_test_split_independent_of_the_length_limit(tmp_path: Path) -> None:
    items = rows(30)
    for i in (3, 11, 17, 25):
        items[i]["answer"] = "word " * 30
    path = write_jsonl(tmp_path / "faq.jsonl", items)
    lenient = load_domain(DataConfig(format="jsonl", path=str(path), test_fraction=0.3, max_answer_words=50))
    strict = load_domain(DataConfig(format="jsonl", path=str(path), test_fraction=0.3, on_long_answer="skip"))
    dropped = {i for split_ids in strict.dropped.values() for i in split_ids}
    assert dropped == {"q3", "q11", "q17", "q25"}
    assert ids(strict.test) == [i for i in ids(lenient.test) if i not in dropped]
    assert ids(strict.train) == [i for i in ids(lenient.train) if i not in dropped]


def test_skip_that_leaves_no_training_question_is_an_error(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "faq.jsonl", [_long(0), _long(1)])
    with pytest.raises(
        DataError, match=r"Every training question .* has an answer over data\.max_answer_words"
    ):
        load_domain(DataConfig(format="jsonl", path=str(path), on_long_answer="skip"))


# --------------------------------------------------------------------------------------------------
# The leakage report


def test_leakage_report_finds_a_planted_near_duplicate_in_the_final_training_set(
    tmp_path: Path, caplog
) -> None:
    root = tmp_path / "d"
    planted = {
        "id": "t-copy",
        "question": "How much does a check-up cost at the clinic?",
        "answer": "70 euros",
    }
    near = {
        "id": "x-near",
        "question": "I wonder, how much does a check-up cost at the clinic?",
        "answer": "70",
    }
    long_twin = {**planted, "id": "t-long", "question": "What does the first visit cost at the clinic today?"}
    long_twin["answer"] = "word " * 30
    write_jsonl(root / "train.jsonl", [*rows(6), planted, long_twin])
    write_jsonl(root / "test.jsonl", [*rows(3, start=10), near, {**long_twin, "id": "x-twin", "answer": "1"}])
    cfg = DataConfig(format="jsonl", path=str(root), on_long_answer="skip")
    with caplog.at_level(logging.WARNING, logger="domainllm"):
        ds = load_domain(cfg)
    report = ds.leakage
    assert isinstance(report, LeakageReport) and report.train_size == len(ds.train) == 7
    # The long twin was dropped from train, so its identical test question is not leakage.
    assert report.questions == {"test": 1} and report.pairs_found == {"test": 1} and not report.clean
    (pair,) = report.pairs
    assert (pair.split, pair.train_id, pair.other_id) == ("test", "t-copy", "x-near")
    assert pair.score == pytest.approx(10 / 12)
    assert json.loads(json.dumps(report.to_dict()))["pairs"][0]["other_id"] == "x-near"
    warning = next(r.getMessage() for r in caplog.records if "near-duplicates" in r.getMessage())
    assert (
        warning.startswith("1 test question(s) are near-duplicates") and "'t-copy' ~ test 'x-near'" in warning
    )


def test_leakage_report_is_a_public_function_for_later_stages() -> None:
    from domainllm.data import QARecord

    train = [
        QARecord(id="a", question="Which dentist sees children on Fridays?", answer="Kofi", doc_id="kids")
    ]
    generated = [
        QARecord(
            id="g1", question="Which dentist sees the children on Fridays?", answer="Kofi", seen_in_train=True
        ),
        QARecord(id="g2", question="Where is the car park?", answer="behind", doc_id="kids"),
    ]
    report = leakage_report(train, {"generated": generated}, keep=1)
    assert report.sizes == {"generated": 2} and report.questions == {"generated": 1}
    assert report.marked_seen == {"generated": 1} and report.shared_documents == {"generated": 1}
    assert [p.other_id for p in report.pairs] == ["g1"]
    assert near_duplicates(train, generated)[0][2] == pytest.approx(6 / 7)
    assert leakage_report(train, {"generated": generated}, threshold=0.9).clean


# --------------------------------------------------------------------------------------------------
# Config keys


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"test_fraction": 0.6}, r"'data\.test_fraction' is 0\.6\. Use a value between 0\.0 and 0\.5"),
        (
            {"test_fraction": 0.5, "val_fraction": 0.4},
            r"'data\.test_fraction' is 0\.5 with data\.val_fraction = 0\.4",
        ),
        ({"split_by": "chapter"}, r"'data\.split_by' is 'chapter'\. Use 'question', or 'document'"),
        ({"on_long_answer": "truncate"}, r"'data\.on_long_answer' is 'truncate'\. Use 'error'.*'skip'"),
    ],
)
def test_new_data_keys_are_validated(kwargs: dict, pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        DataConfig(**kwargs)


def test_new_data_keys_load_from_overrides() -> None:
    cfg = load_config(None, ["data.test_fraction=0.2", "data.split_by=document", "data.on_long_answer=skip"])
    assert (cfg.data.test_fraction, cfg.data.split_by, cfg.data.on_long_answer) == (0.2, "document", "skip")
    with pytest.raises(ConfigError, match=r"data\.split_by.*allowed values: question, document"):
        load_config(None, ["data.split_by=chapter"])
