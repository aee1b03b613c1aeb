"""Loaders: every format on a real-format sample, the folder layout, splits, and bad input."""

from __future__ import annotations

import json
import logging
import random
import re
from collections import Counter
from pathlib import Path

import pytest
from conftest import SHARED_PUBMEDQA, TESTS_DIR

from domainllm.config import DataConfig
from domainllm.data import load_domain, load_qa
from domainllm.data.leakage import near_duplicates
from domainllm.data.records import QARecord
from domainllm.errors import DataError

SAMPLES = TESTS_DIR / "data"
CSV_FIELDS = {
    "question": "query",
    "answer": "reference",
    "aliases": "alt_answers",
    "answer_type": "kind",
    "doc_id": "source_doc",
}


def write_jsonl(path: Path, rows: list[dict | str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [row if isinstance(row, str) else json.dumps(row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def qa(rid: str, question: str = "What is it?", answer: str = "a thing", **extra) -> dict:
    return {"id": rid, "question": question, "answer": answer, **extra}


def folder_domain(
    root: Path, train: list, test: list, val: list | None = None, docs: dict | None = None
) -> Path:
    write_jsonl(root / "qa" / "train.jsonl", train)
    write_jsonl(root / "qa" / "test.jsonl", test)
    if val is not None:
        write_jsonl(root / "qa" / "val.jsonl", val)
    for doc_id, text in (docs or {}).items():
        (root / "docs").mkdir(parents=True, exist_ok=True)
        (root / "docs" / f"{doc_id}.md").write_text(text, encoding="utf-8")
    return root


# --------------------------------------------------------------------------------------------------
# folder


def test_folder_loads_tiny_domain_and_warns_about_near_duplicates(tiny_domain: Path, caplog) -> None:
    with caplog.at_level(logging.WARNING):
        ds = load_domain(DataConfig(format="folder", path=str(tiny_domain)))
    assert (len(ds.train), len(ds.val), len(ds.test)) == (24, 4, 4)
    assert sorted(d.metadata["doc_id"] for d in ds.documents) == ["hours", "policies", "prices", "staff"]
    first = ds.train[0]
    assert (first.id, first.answer, first.doc_id, first.answer_type) == (
        "train-0-0",
        "€85",
        "prices",
        "text",
    )
    assert ds.test[0].seen_in_train is True
    # "I wonder, how much does a check-up cost ...?" vs the training question: Jaccard 10/12 = 0.83.
    warning = next(r.getMessage() for r in caplog.records if "near-duplicates" in r.getMessage())
    assert warning.startswith("2 test question(s)")
    assert "train 'train-0-0' ~ test 'test-0'" in warning


def test_folder_relative_path_resolves_against_base_dir(tiny_domain: Path) -> None:
    cfg = DataConfig(format="folder", path="domain")
    ds = load_domain(cfg, base_dir=tiny_domain.parent)
    assert len(ds.train) == 24


def test_val_fraction_holds_out_a_seeded_share_of_train(tmp_path: Path) -> None:
    train = [qa(f"t{i}", f"Question number {i} about topic {i * 7}?") for i in range(20)]
    root = folder_domain(tmp_path / "d", train, [qa("x1", "Totally different test question?")])
    cfg = DataConfig(format="folder", path=str(root), val_fraction=0.25)
    first, second = load_domain(cfg), load_domain(cfg)
    assert len(first.val) == 5 and len(first.train) == 15
    assert [r.id for r in first.val] == [r.id for r in second.val]  # seed 0, not the training seed
    assert not {r.id for r in first.val} & {r.id for r in first.train}
    # Kept in file order, so the split is readable.
    assert [r.id for r in first.train] == sorted((r.id for r in first.train), key=lambda s: int(s[1:]))
    # An existing val split wins over val_fraction.
    root2 = folder_domain(tmp_path / "e", train, [qa("x1")], val=[qa("v1", "A val question?")])
    with_val = load_domain(DataConfig(format="folder", path=str(root2), val_fraction=0.25))
    assert [r.id for r in with_val.val] == ["v1"] and len(with_val.train) == 20


def test_explicit_split_files_and_docs_dir(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "src" / "mine_train.jsonl", [qa("a", doc_id="kb")])
    write_jsonl(tmp_path / "src" / "mine_eval.jsonl", [qa("b", "Other question?", doc_id="kb")])
    (tmp_path / "kb_docs").mkdir()
    (tmp_path / "kb_docs" / "kb.txt").write_text("A thing is described here.", encoding="utf-8")
    cfg = DataConfig(
        format="jsonl",
        path=str(tmp_path / "src"),
        train_file="mine_train.jsonl",
        test_file="mine_eval.jsonl",
        docs_dir=str(tmp_path / "kb_docs"),
    )
    ds = load_domain(cfg)
    assert [r.id for r in ds.train] == ["a"] and [r.id for r in ds.test] == ["b"]
    assert [d.metadata["doc_id"] for d in ds.documents] == ["kb"]
    with pytest.raises(DataError, match=r"data\.test_file.*nope\.jsonl"):
        load_domain(DataConfig(format="jsonl", path=str(tmp_path / "src"), test_file="nope.jsonl"))


# --------------------------------------------------------------------------------------------------
# jsonl / csv


def test_csv_sample_with_field_mapping_and_generated_ids() -> None:
    records = load_qa(SAMPLES / "qa_sample.csv", "csv", fields=CSV_FIELDS, split="test")
    assert [r.id for r in records] == ["test-2", "test-3", "test-4", "test-5"]  # <split>-<line>
    lead, price, closed, insurers = records
    assert lead.aliases == ("Amara Osei", "Dr. Osei")  # "|"-separated
    assert price.aliases == ("€70", "seventy euros")  # JSON list in a cell
    assert price.answer_type == "number" and price.meta == {"note": "price list, 2024"}
    assert closed.aliases == () and closed.meta == {}
    assert insurers.doc_id == "billing/insurance"


def test_csv_split_column_routes_rows(tmp_path: Path) -> None:
    path = tmp_path / "all.csv"
    path.write_text(
        "id,question,answer,split\n1,Q one?,A1,train\n2,Q two?,A2,validation\n3,Q three?,A3,test\n4,Q four?,A4,train\n",
        encoding="utf-8",
    )
    ds = load_domain(DataConfig(format="csv", path=str(path)))
    assert [[r.id for r in ds.split(s)] for s in ("train", "val", "test")] == [["1", "4"], ["2"], ["3"]]
    assert [r.question for r in load_qa(path, "csv", split="val")] == ["Q two?"]


def test_jsonl_file_with_field_mapping_keeps_unmapped_keys_in_meta(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "qa.jsonl",
        [
            {
                "qid": 7,
                "prompt": "How many roots has a lower molar?",
                "target": 2,
                "type": "number",
                "src": "x",
            },
            {
                "qid": 8,
                "prompt": "Is enamel alive?",
                "target": "No",
                "type": "label",
                "labels": ["yes", "no"],
            },
        ],
    )
    fields = {"id": "qid", "question": "prompt", "answer": "target", "answer_type": "type"}
    molar, enamel = load_qa(path, "jsonl", fields=fields)
    assert (molar.id, molar.answer, molar.answer_type, molar.meta) == ("7", "2", "number", {"src": "x"})
    assert (enamel.answer, enamel.labels) == ("no", ("yes", "no"))  # label matched case-insensitively


# --------------------------------------------------------------------------------------------------
# squad, pubmedqa, mcq, hf


def test_squad_sample(caplog) -> None:
    with caplog.at_level(logging.INFO, logger="domainllm"):
        ds = load_domain(DataConfig(format="squad", path=str(SAMPLES / "squad_sample.json")))
    assert [r.id for r in ds.train] == ["hl-1", "hl-2", "hl-4", "sm-1", "sm-2"]
    assert any("Skipped 1 unanswerable SQuAD v2 question" in r.getMessage() for r in caplog.records)
    builder, _, museum, _, geese = ds.train
    assert builder.answer == "Margit Vos" and builder.aliases == ("the engineer Margit Vos",)
    assert geese.aliases == ("12,000",)
    assert builder.doc_id == "harbour-lighthouse-0" and museum.doc_id == "harbour-lighthouse-1"
    docs = {d.metadata["doc_id"]: d.page_content for d in ds.documents}
    assert list(docs) == ["harbour-lighthouse-0", "harbour-lighthouse-1", "salt-marsh-reserve-0"]
    assert builder.context == docs["harbour-lighthouse-0"] and "1887" in builder.context


def test_pubmedqa_sample() -> None:
    ds = load_domain(DataConfig(format="pubmedqa", path=str(SAMPLES / "pubmedqa_sample")))
    truth = json.loads((SAMPLES / "pubmedqa_sample" / "test_ground_truth.json").read_text())
    assert {r.id for r in ds.test} == set(truth) and len(ds.train) == 3
    for record in ds.test:
        assert record.answer == truth[record.id]
    record = ds.test[0]
    assert record.answer_type == "label" and record.labels == ("yes", "no", "maybe")
    assert record.doc_id == record.id and record.meta["long_answer"]
    docs = {d.metadata["doc_id"]: d.page_content for d in ds.documents}
    assert len(docs) == 6 and docs[record.id] == record.context
    items = json.loads((SAMPLES / "pubmedqa_sample" / "ori_pqal.json").read_text())
    assert record.context == "\n\n".join(c.strip() for c in items[record.id]["CONTEXTS"])


@pytest.mark.skipif(not SHARED_PUBMEDQA.is_dir(), reason="shared PubMedQA files not present")
def test_pubmedqa_real_official_split() -> None:
    ds = load_domain(DataConfig(format="pubmedqa", path=str(SHARED_PUBMEDQA), max_answer_words=5))
    assert (len(ds.train), len(ds.val), len(ds.test), len(ds.documents)) == (500, 0, 500, 1000)
    all_labels = Counter(r.answer for r in (*ds.train, *ds.test))
    assert all_labels == {"yes": 552, "no": 338, "maybe": 110}
    assert Counter(r.answer for r in ds.test) == {"yes": 276, "no": 169, "maybe": 55}
    held = load_domain(
        DataConfig(format="pubmedqa", path=str(SHARED_PUBMEDQA), val_fraction=0.1)
    )  # val from train only
    assert (len(held.train), len(held.val), len(held.test)) == (450, 50, 500)
    assert not {r.id for r in held.val} & {r.id for r in held.test}


def test_mcq_medmcqa_original_json_is_read_as_one_based(caplog) -> None:
    with caplog.at_level(logging.INFO, logger="domainllm"):
        records = load_qa(SAMPLES / "mcq_medmcqa_sample.jsonl", "mcq")
    assert any("read as 1-based (a value of 4 occurs)" in r.getMessage() for r in caplog.records)
    assert [r.answer_index for r in records] == [1, 0, 3, 2]  # cop 2, 1, 4, 3
    nerve = records[0]
    assert (nerve.id, nerve.answer_type, nerve.answer) == (
        "a1f3c9e2-0001",
        "choice",
        "Inferior alveolar nerve",
    )
    assert nerve.options == ("Maxillary nerve", "Inferior alveolar nerve", "Facial nerve", "Lingual nerve")
    assert nerve.meta["subject_name"] == "Anatomy" and "cop" not in nerve.meta and "opa" not in nerve.meta


def test_mcq_cop_base_inference_and_override(tmp_path: Path) -> None:
    rows = [
        {"question": f"Q{i}?", "opa": "w", "opb": "x", "opc": "y", "opd": "z", "cop": cop}
        for i, cop in enumerate([0, 3, 1])
    ]
    path = write_jsonl(tmp_path / "hf_style.jsonl", rows)
    assert [r.answer for r in load_qa(path, "mcq")] == ["w", "z", "x"]  # a 0 occurs: 0-based
    one_based = [{**row, "cop": row["cop"] + 1} for row in rows[1:]]  # cops 4, 2
    path1 = write_jsonl(tmp_path / "orig.jsonl", one_based)
    assert [r.answer for r in load_qa(path1, "mcq")] == ["z", "x"]
    # cop 2 and 3 only: inferred 1-based; the override says 0-based.
    ambiguous = write_jsonl(tmp_path / "amb.jsonl", [{**rows[0], "cop": 2}, {**rows[1], "cop": 3}])
    assert [r.answer for r in load_qa(ambiguous, "mcq")] == ["x", "y"]
    assert [r.answer for r in load_qa(ambiguous, "mcq", fields={"cop_base": "0"})] == ["y", "z"]
    with pytest.raises(
        DataError, match=r"orig\.jsonl line 1, field 'cop': is 4, outside the 4 options when read as 0-based"
    ):
        load_qa(path1, "mcq", fields={"cop_base": "0"})


def test_mcq_unlabelled_medmcqa_test_rows_are_an_error(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "test.jsonl",
        [{"question": "Q?", "opa": "a", "opb": "b", "opc": "c", "opd": "d", "cop": -1}],
    )
    with pytest.raises(DataError, match=r"test\.jsonl line 1, field 'cop'.*unlabelled.*validation split"):
        load_qa(path, "mcq")


def test_mcq_options_and_answer_index_sample() -> None:
    records = load_qa(SAMPLES / "mcq_options_sample.jsonl", "mcq")
    assert [(r.answer, r.answer_index, len(r.options)) for r in records] == [
        ("Lower central incisor", 0, 4),
        ("32", 2, 4),
        ("Vitamin C", 1, 2),
    ]


HF_FIELDS = {"id": "uid", "question": "query", "answer": "answers"}


def test_hf_local_data_folder_with_squad_style_answers() -> None:
    ds = load_domain(DataConfig(format="hf", path=str(SAMPLES / "hf_sample"), fields=HF_FIELDS))
    assert [len(ds.train), len(ds.val), len(ds.test)] == [3, 1, 2]
    logo = ds.train[0]
    assert (logo.id, logo.answer, logo.aliases, logo.meta) == (
        "hf-train-1",
        "teal",
        ("a teal anchor",),
        {"topic": "clinic"},
    )


def test_hf_save_to_disk_with_split_mapping(tmp_path: Path) -> None:
    import datasets

    rows = {"question": ["Q one?", "Q two?"], "answer": ["one", "two"]}
    datasets.DatasetDict(
        {
            "training": datasets.Dataset.from_dict(rows),
            "dev": datasets.Dataset.from_dict({k: v[:1] for k, v in rows.items()}),
        }
    ).save_to_disk(str(tmp_path / "saved"))
    cfg = DataConfig(
        format="hf", path=str(tmp_path / "saved"), hf_splits={"train": "training", "test": "dev"}
    )
    ds = load_domain(cfg)
    assert [r.id for r in ds.train] == ["train-1", "train-2"] and [r.answer for r in ds.test] == ["one"]
    # "dev" is recognised as val when not mapped; an explicitly mapped split must exist.
    assert [r.question for r in load_domain(DataConfig(format="hf", path=str(tmp_path / "saved"))).val] == [
        "Q one?"
    ]
    with pytest.raises(DataError, match=r"data\.hf_splits\.test' is 'test'.*splits dev, training"):
        load_domain(DataConfig(format="hf", path=str(tmp_path / "saved"), hf_splits={"test": "test"}))


def test_hf_hub_name_offline_says_hub_unreachable_and_how_to_use_a_local_path() -> None:
    with pytest.raises(DataError) as info:
        load_domain(DataConfig(format="hf", path="someorg/some-private-dataset"))
    message = str(info.value)
    assert "hub is unreachable" in message and "save_to_disk" in message and "data.path" in message


# --------------------------------------------------------------------------------------------------
# Validation


@pytest.mark.parametrize(
    ("train_rows", "pattern"),
    [
        (
            [qa("a"), '{"id": "b", "question": "Q?"', qa("c")],
            r"qa/train\.jsonl line 2: is not valid JSON \(Expecting ',' delimiter at column 29\)",
        ),
        ([qa("a", answer="")], r"qa/train\.jsonl line 1, field 'answer': is missing or empty"),
        ([{"question": "Q?", "answer": "x"}], r"line 1, field 'id': is missing or empty"),
        ([qa("a", question="  ")], r"line 1, field 'question': is missing or empty"),
        (
            [qa("a"), qa("b", answer_type="yesno")],
            r"qa/train\.jsonl line 2, field 'answer_type': 'yesno' is not one of text, number, choice, label\. Fix the value",
        ),
        ([qa("a", answer_type="choice")], r"field 'options': is missing but answer_type is 'choice'"),
        (
            [qa("a", answer="D", answer_type="choice", options=["x", "y"])],
            r"field 'answer': 'D' is not one of the options \['x', 'y'\]",
        ),
        ([qa("a", answer="many", answer_type="number")], r"field 'answer': 'many' holds no number"),
        ([qa("a"), qa("a", "Other?")], r"line 2, field 'id': 'a' is already used at .*train\.jsonl line 1"),
        ([qa("t1", doc_id="nope")], r"field 'doc_id': 'nope' is not a document in .*docs \(known: kb\)"),
        (
            [qa("a", answer=" ".join(["word"] * 21))],
            r"field 'answer': has 21 words, more than data\.max_answer_words = 20",
        ),
    ],
)
def test_bad_rows_raise_data_error_with_file_line_and_field(tmp_path: Path, train_rows, pattern) -> None:
    root = folder_domain(
        tmp_path / "d", train_rows, [qa("t9", "A test question?")], docs={"kb": "# KB\n\nText."}
    )
    with pytest.raises(DataError, match=pattern):
        load_domain(DataConfig(format="folder", path=str(root)))


def test_duplicate_ids_across_splits(tmp_path: Path) -> None:
    root = folder_domain(tmp_path / "d", [qa("same")], [qa("same", "Another question?")])
    with pytest.raises(
        DataError, match=r"test\.jsonl line 1, field 'id': 'same' is already used at .*train\.jsonl line 1"
    ):
        load_domain(DataConfig(format="folder", path=str(root)))


def test_several_problems_are_reported_together_and_nothing_is_returned(tmp_path: Path) -> None:
    rows = [qa(f"r{i}", answer="") for i in range(7)] + ["not json"]
    root = folder_domain(tmp_path / "d", rows, [qa("t")])
    with pytest.raises(DataError) as info:
        load_domain(DataConfig(format="folder", path=str(root)))
    message = str(info.value)
    assert message.startswith("Found 8 problems in the data (showing the first 5): (1) ")
    assert "(5) " in message and "(6) " not in message and message.endswith("Nothing was loaded.")


def test_empty_file_and_folder_without_splits(tmp_path: Path) -> None:
    root = folder_domain(tmp_path / "d", [qa("a")], [qa("b", "Q2?")])
    (root / "qa" / "test.jsonl").write_text("\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"qa/test\.jsonl: is empty"):
        load_domain(DataConfig(format="folder", path=str(root)))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"has no split files for format 'folder': expected train\.jsonl"):
        load_domain(DataConfig(format="folder", path=str(tmp_path / "empty")))
    with pytest.raises(DataError, match=r"data\.path.*does not exist"):
        load_domain(DataConfig(format="folder", path=str(tmp_path / "missing")))


def test_unknown_field_mapping_key_suggests_the_right_one(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"maps 'quesiton'.*Did you mean 'question'"):
        load_qa(SAMPLES / "qa_sample.csv", "csv", fields={"quesiton": "query"})


def test_load_qa_folder_split(tiny_domain: Path) -> None:
    records = load_qa(tiny_domain, "folder", split="test")
    assert [r.id for r in records] == ["test-0", "test-1", "test-2", "test-3"]


def test_near_duplicates_prefix_filter_matches_brute_force() -> None:
    rng = random.Random(1)
    vocab = [f"w{i}" for i in range(30)]

    def rec(i: int, words: list[str]) -> QARecord:
        return QARecord(id=str(i), question=" ".join(words), answer="x")

    train = [rec(i, rng.sample(vocab, rng.randint(3, 9))) for i in range(150)]
    test = [rec(1000 + i, [*train[i].question.split()[:-1], "w29"]) for i in range(60)]
    test += [rec(2000 + i, rng.sample(vocab, rng.randint(3, 9))) for i in range(60)]

    def words(r: QARecord) -> set[str]:
        return set(re.findall(r"\w+", r.question.lower()))

    expected = {
        (a.id, b.id)
        for a in train
        for b in test
        if len(words(a) & words(b)) / len(words(a) | words(b)) >= 0.8
    }
    found = {(a.id, b.id) for a, b, _ in near_duplicates(train, test, 0.8)}
    assert expected and found == expected


def test_load_qa_reads_a_single_file_as_the_named_split() -> None:
    records = load_qa(SAMPLES / "squad_sample.json", "squad", split="test")
    assert [r.id for r in records][:2] == ["hl-1", "hl-2"] and len(records) == 5
    mixed = load_qa(SAMPLES / "mcq_options_sample.jsonl", "jsonl")  # options, no answer_type: choice
    assert [r.answer_type for r in mixed] == ["choice"] * 3 and mixed[1].answer == "32"


def test_single_file_path_is_train_beside_an_explicit_test_file(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "train.jsonl", [qa("a")])
    write_jsonl(tmp_path / "held_out.jsonl", [qa("b", "Q two?")])
    ds = load_domain(
        DataConfig(format="jsonl", path=str(tmp_path / "train.jsonl"), test_file="held_out.jsonl")
    )
    assert [r.id for r in ds.train] == ["a"] and [r.id for r in ds.test] == ["b"]


# --------------------------------------------------------------------------------------------------
# load_qa's answer-length default, doc_ids without documents, and data errors through the CLI


def test_load_qa_rejects_long_answers_by_default_like_load_domain(tmp_path: Path) -> None:
    """The public function must not accept what the pipeline rejects: 21 words > the default 20."""
    long_answer = " ".join(["word"] * 21)
    path = write_jsonl(tmp_path / "qa.jsonl", [qa("a"), qa("b", "Long one?", answer=long_answer)])
    with pytest.raises(DataError, match=r"line 2, field 'answer': has 21 words, more than .* = 20"):
        load_qa(path, "jsonl")
    assert [r.id for r in load_qa(path, "jsonl", max_answer_words=None)] == ["a", "b"]  # explicit opt-out
    with pytest.raises(DataError, match=r"line 2, field 'answer': has 21 words, more than .* = 5"):
        load_qa(path, "jsonl", max_answer_words=5)
    with pytest.raises(DataError, match="max_answer_words is 0"):  # 0 is not a silent "no limit"
        load_qa(path, "jsonl", max_answer_words=0)


def test_doc_ids_without_documents_load_with_a_warning(tmp_path: Path, caplog) -> None:
    root = folder_domain(
        tmp_path / "d", [qa("a", doc_id="kb"), qa("b", "Other?")], [qa("t", "Test?", doc_id="kb")]
    )
    with caplog.at_level(logging.WARNING, logger="domainllm"):
        ds = load_domain(DataConfig(format="folder", path=str(root)))
    assert [r.doc_id for r in ds.train] == ["kb", None] and ds.documents == []
    warning = next(r.getMessage() for r in caplog.records if "no documents were loaded" in r.getMessage())
    assert warning.startswith("2 question(s) name a doc_id")
    assert "train.jsonl line 1" in warning
    assert "recall@k cannot be scored" in warning and "data.docs_dir" in warning
    # With documents the check runs instead, and rows without doc_ids alone never warn.
    caplog.clear()
    root2 = folder_domain(tmp_path / "e", [qa("a")], [qa("t", "Test?")])
    with caplog.at_level(logging.WARNING, logger="domainllm"):
        load_domain(DataConfig(format="folder", path=str(root2)))
    assert not any("no documents were loaded" in r.getMessage() for r in caplog.records)


def _cli_train(folder: Path, tmp_path: Path, capsys) -> tuple[int, str]:
    from domainllm.cli import main

    rc = main(["train", "--set", f"data.path={folder}", "--set", f"training.output_dir={tmp_path / 'run'}"])
    return rc, capsys.readouterr().err


def test_cli_train_malformed_line_exits_2_naming_file_and_line_and_writes_nothing(
    tmp_path: Path, capsys
) -> None:
    root = folder_domain(
        tmp_path / "d",
        [qa("a", doc_id="kb"), qa("b", "Second?"), '{"id": "c", "question": "Broken?"', qa("d", "Fourth?")],
        [qa("t", "A test question?")],
        val=[qa("v", "A val question?")],
        docs={"kb": "# KB\n\nText."},
    )
    rc, err = _cli_train(root, tmp_path, capsys)
    assert rc == 2, err
    assert err.startswith("error: ")
    assert "train.jsonl line 3: is not valid JSON" in err and "Nothing was loaded." in err
    assert "Traceback" not in err
    assert not (tmp_path / "run").exists(), "a data error must not leave a run directory behind"


def test_cli_train_unknown_doc_id_exits_2_naming_the_field(tmp_path: Path, capsys) -> None:
    root = folder_domain(
        tmp_path / "d",
        [qa("a", doc_id="kb"), qa("b", "Second?", doc_id="fillings")],
        [qa("t", "A test question?")],
        val=[qa("v", "A val question?")],
        docs={"kb": "# KB\n\nText."},
    )
    rc, err = _cli_train(root, tmp_path, capsys)
    assert rc == 2, err
    assert "train.jsonl line 2, field 'doc_id': 'fillings' is not a document" in err
    assert "Traceback" not in err
    assert not (tmp_path / "run").exists()
