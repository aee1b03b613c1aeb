"""The augment stage: real generation through a local model, parsing of malformed output, the grounding
check, duplicates, the leakage check against val/test, provenance, the datasheet, and overwrite rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from domainllm.augment import AugmentConfig, augment
from domainllm.augment.checks import check_candidate
from domainllm.augment.generators import Candidate, parse_candidates, parse_paraphrases


class ScriptedGenerator:
    """A generator whose output is written here (a real Generator, for checking what the checks decide)."""

    name = "scripted"

    def __init__(self, paraphrases: dict[str, list[str]], questions: dict[str, list[Candidate]]) -> None:
        self._p, self._q = paraphrases, questions
        self.chunks_seen: list[tuple[str, str, str]] = []

    def paraphrase(self, records, n):
        return [self._p.get(r.id, [])[:n] for r in records]

    def questions(self, chunks, m):
        self.chunks_seen = list(chunks)
        return [self._q.pop(doc_id, []) for doc_id, _, _ in chunks]


def _rows(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "qa" / "train.jsonl").read_text().splitlines()]


def test_parsing_drops_what_it_cannot_read():
    text = '```json\n{"question": "Who?", "answer": "Dr. X", "evidence": "Dr. X is"}\nnot json\n[1, 2]\n{"question": "Q?"}\n```'
    found, bad = parse_candidates(text, 5)
    assert [(c.question, c.answer, c.evidence) for c in found] == [("Who?", "Dr. X", "Dr. X is")]
    assert bad == 3
    lines = '1. How much is a check-up here?\n- What does a check-up cost?\nSure, here you go:\n\n"Is a check-up expensive?"'
    assert parse_paraphrases(lines, 5) == [
        "How much is a check-up here?",
        "What does a check-up cost?",
        "Is a check-up expensive?",
    ]
    assert len(parse_paraphrases(lines, 2)) == 2


def test_grounding_is_judged_against_the_chunk():
    chunk = "A check-up at Quillby Dental costs €85 and takes 30 minutes. Parking: 1,250 spaces."
    ok = Candidate("How much is a check-up?", "€85", "costs €85 and takes 30 minutes", "number")
    assert check_candidate(ok, chunk, 20) is None
    assert (
        check_candidate(Candidate("How many parking spaces are there?", "1250", "", "number"), chunk, 20)
        is None
    )
    assert check_candidate(Candidate("How much is a check-up?", "850", "", "number"), chunk, 20) == (
        "answer not stated in its chunk"
    )
    assert (
        check_candidate(Candidate("Who runs the practice?", "Dr. Ada", ""), chunk, 20)
        == "answer not stated in its chunk"
    )
    invented = Candidate("How long is a check-up?", "30 minutes", "takes 45 minutes")
    assert check_candidate(invented, chunk, 20) == "evidence not in its chunk"
    assert check_candidate(Candidate("check-up", "€85"), chunk, 20) == "not a question"
    assert check_candidate(Candidate("How long is it?", "30 minutes " * 5), chunk, 6) == "answer too long"
    bad_choice = Candidate(
        "How long is it?", "30 minutes", "", "choice", options=["10 minutes", "20 minutes"]
    )
    assert check_candidate(bad_choice, chunk, 20) == "choice answer not among its options"


def test_augment_keeps_grounded_rows_with_provenance_and_counts_every_drop(tiny_config, tmp_path):
    from domainllm.data import load_domain

    src = load_domain(tiny_config.data, tiny_config.base_dir)
    first, second = src.train[0], src.train[1]
    test_q = src.test[0].question
    gen = ScriptedGenerator(
        paraphrases={
            first.id: ["What is the price of a check-up at Quillby Dental?", first.question.upper(), test_q],
            second.id: ["not a question"],
        },
        questions={
            "prices": [
                Candidate("How much does a scale and polish cost?", "€60", "A scale and polish costs €60."),
                Candidate("How much does whitening cost?", "€300", ""),  # not in the document
                Candidate("How much does a scale and polish cost?", "€60", ""),  # duplicate of the first
            ],
            "staff": [Candidate("Who is the oral surgeon at Quillby Dental?", "Dr. Tomas Reyes", "")],
            "hours": [Candidate(src.test[2].question, "Wednesday", "")],  # grounded, but a test question
        },
    )
    out = augment(AugmentConfig(tiny_config, tmp_path / "aug", "scripted", 3, 3, generator_obj=gen))
    sheet = json.loads((out / "datasheet.json").read_text())
    assert sheet["kept"] == {"original": len(src.train), "paraphrase": 1, "generated": 2}
    assert sheet["dropped"]["paraphrase"] == {
        "not a question": 1,
        "duplicate question": 1,
        "near-duplicate of a val/test question": 1,
    }
    assert sheet["dropped"]["generated"] == {
        "answer not stated in its chunk": 1,
        "duplicate question": 1,
        "near-duplicate of a val/test question": 1,
    }
    assert sheet["offered"] == {"paraphrase": 4, "generated": 5}
    rows = _rows(out)
    para = [r for r in rows if r["source"] == "paraphrase"]
    assert para == [
        {
            **{k: v for k, v in first.to_dict().items() if k != "seen_in_train"},
            "id": f"{first.id}-p1",
            "question": "What is the price of a check-up at Quillby Dental?",
            "source": "paraphrase",
            "parent_id": first.id,
            "generator": "scripted",
        }
    ]
    generated = {r["question"]: r for r in rows if r["source"] == "generated"}
    assert generated["How much does a scale and polish cost?"]["doc_id"] == "prices"
    assert generated["How much does a scale and polish cost?"]["evidence"] == "A scale and polish costs €60."
    assert generated["How much does a scale and polish cost?"]["chunk_id"].startswith("prices")
    # val/test are the source's files byte for byte; the documents come along
    for split in ("val", "test"):
        source_file = Path(tiny_config.data.path) / "qa" / f"{split}.jsonl"
        assert (out / "qa" / f"{split}.jsonl").read_bytes() == source_file.read_bytes()
    assert sorted(p.name for p in (out / "docs").iterdir()) == sorted(
        p.name for p in (Path(tiny_config.data.path) / "docs").iterdir()
    )
    assert "| generated | 2 | 5 |" in (out / "README.md").read_text()
    # the loaders read it as a domain; data.train_sources picks the rows to train on
    import dataclasses

    data_cfg = dataclasses.replace(tiny_config.data, path=str(out), train_sources=["original", "paraphrase"])
    loaded = load_domain(data_cfg, tiny_config.base_dir)
    assert len(loaded.train) == len(src.train) + 1
    assert loaded.leakage.pairs_found == src.leakage.pairs_found  # augmentation added no leak


def test_augment_never_replaces_a_folder_without_being_asked(tiny_config, tmp_path):
    from domainllm.errors import RunDirError

    make = lambda **kw: AugmentConfig(  # noqa: E731
        tiny_config, tmp_path / "aug", "scripted", 1, 0, generator_obj=ScriptedGenerator({}, {}), **kw
    )
    out = augment(make())
    before = (out / "qa" / "train.jsonl").read_bytes()
    with pytest.raises(RunDirError, match="--overwrite"):
        augment(make())
    assert (out / "qa" / "train.jsonl").read_bytes() == before
    augment(make(overwrite=True))
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(RunDirError, match="not written by domainllm augment"):
        augment(
            AugmentConfig(
                tiny_config, foreign, "x", 1, 0, generator_obj=ScriptedGenerator({}, {}), overwrite=True
            )
        )
    assert (foreign / "notes.txt").read_text() == "keep me"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folder left behind


def test_a_local_model_generates_through_the_real_path(tiny_config, tiny_model_dir, tmp_path):
    """hf:PATH: domainllm's own serving generates (a tiny random model writes junk); whatever it writes
    goes through the same parsing and checks, and every offered item is kept or counted as dropped."""
    from domainllm.augment import make_generator

    gen = make_generator(f"hf:{tiny_model_dir}", max_new_tokens=12)
    out = augment(
        AugmentConfig(tiny_config, tmp_path / "aug", f"hf:{tiny_model_dir}", 1, 1, generator_obj=gen)
    )
    sheet = json.loads((out / "datasheet.json").read_text())
    assert sheet["generator"] == f"hf:{tiny_model_dir}"
    dropped = sheet["dropped"]
    assert sheet["offered"]["paraphrase"] == sheet["kept"]["paraphrase"] + sum(dropped["paraphrase"].values())
    generated_dropped = sum(v for k, v in dropped["generated"].items() if k != "unreadable")
    assert sheet["offered"]["generated"] == sheet["kept"]["generated"] + generated_dropped
    # the model was asked once per training row and once per document chunk, and each reply (a tiny
    # random model writes little or nothing) went through the parsing and the checks
    assert len(gen.replies) >= 24 + 4
    assert all(isinstance(text, str) for text in gen.replies)
    assert (
        len(_rows(out))
        == sheet["kept"]["original"] + sheet["kept"]["paraphrase"] + sheet["kept"]["generated"]
    )


def test_cli_builds_from_files_and_names_a_bad_generator(tiny_config, tmp_path, capsys):
    import yaml

    from domainllm.cli import main
    from domainllm.config import config_to_dict

    cfg_file = tmp_path / "tiny.yaml"
    cfg_file.write_text(yaml.safe_dump(config_to_dict(tiny_config)))
    authored = tmp_path / "authored"
    authored.mkdir()
    (authored / "generated.jsonl").write_text(
        json.dumps(
            {
                "doc_id": "staff",
                "question": "Who is the oral surgeon?",
                "answer": "Dr. Tomas Reyes",
                "evidence": "Dr. Tomas Reyes is the oral surgeon",
            }
        )
        + "\n"
    )
    out = tmp_path / "aug"
    assert main(["augment", "-c", str(cfg_file), "--generator", f"files:{authored}", "-o", str(out)]) == 0
    assert "Augmented domain written to" in capsys.readouterr().out
    assert json.loads((out / "datasheet.json").read_text())["kept"]["generated"] == 1
    assert main(["augment", "-c", str(cfg_file), "--generator", "nonsense", "-o", str(tmp_path / "x")]) == 2
    assert "--generator 'nonsense'" in capsys.readouterr().err
    (authored / "generated.jsonl").write_text('{"doc_id": "staff"}\n')
    assert (
        main(["augment", "-c", str(cfg_file), "--generator", f"files:{authored}", "-o", str(tmp_path / "y")])
        == 2
    )
    assert "generated.jsonl line 1, field 'question'" in capsys.readouterr().err
    assert not (tmp_path / "y").exists()
