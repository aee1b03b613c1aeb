"""Report files and the verdict, from hand-made arm outputs (no model needed)."""

from __future__ import annotations

import json
import math

import pytest

from domainllm.config import CompareConfig
from domainllm.data.records import QARecord
from domainllm.eval.assemble import assemble_results, prediction_rows, score_runs
from domainllm.eval.predictions import ArmRun, QuestionOutput
from domainllm.eval.results import Results
from domainllm.report import make_chart, print_results, render_markdown, rerender, verdict, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def records(n_seen: int = 24, n_unseen: int = 16) -> list[QARecord]:
    out = []
    for i in range(n_seen + n_unseen):
        out.append(
            QARecord(
                id=f"q{i}",
                question=f"What is fact {i}?",
                answer=f"fact{i}",
                seen_in_train=i < n_seen,
                doc_id=f"doc{i}",
            )
        )
    return out


def run(name: str, recs: list[QARecord], right, **kw) -> ArmRun:
    """An arm that answers question i correctly when right(i, record) is true."""
    outputs = [
        QuestionOutput(
            answer=f"It is {r.answer}." if right(i, r) else "I do not know.",
            prompt=f"prompt {r.question}",
            doc_ids=[r.doc_id, "other"] if kw.get("retrieval") else [],
            chunk_ids=[f"{r.doc_id}::0", "other::0"] if kw.get("retrieval") else [],
            latency_s=0.1 + 0.01 * (i % 3),
            prompt_tokens=10 + (30 if kw.get("retrieval") else 0),
            generated_tokens=5,
        )
        for i, r in enumerate(recs)
    ]
    return ArmRun(name=name, outputs=outputs, wall_s=4.0, generation_s=4.0, peak_rss_mb=900.0, **kw)


def dentist_runs(recs):
    """Persona prompt knows nothing, fine-tuning knows seen facts, retrieval knows (almost) all."""
    return [
        run("prompt_only", recs, lambda i, r: i % 10 == 0),
        run("rag", recs, lambda i, r: i % 8 != 1, retrieval=True),
        run("finetuned", recs, lambda i, r: r.seen_in_train or i % 10 == 0, adapter=True),
        run("finetuned_rag", recs, lambda i, r: i not in (25, 33), adapter=True, retrieval=True),
    ]


def build(recs, runs, train=()):
    ccfg = CompareConfig(n_bootstrap=300, seed=0)
    scores = score_runs(recs, runs, ccfg=ccfg, k=2)
    results = Results(
        status="complete",
        domain="tiny",
        split="test",
        split_source="the test split 'x/qa/test.jsonl'",
        n_questions=len(recs),
        n_total=len(recs),
        answer_types={"text": len(recs)},
        seen_counts={
            "seen": sum(bool(r.seen_in_train) for r in recs),
            "unseen": sum(r.seen_in_train is False for r in recs),
        },
        phases={"arm: prompt_only": 4.0, "scoring and statistics": 0.5},
    )
    assemble_results(results, recs, runs, scores, train=train, ccfg=ccfg)
    results.verdict = verdict(results)
    return results, prediction_rows(recs, runs, scores)


def test_report_files_written_and_consistent(tmp_path) -> None:
    recs = records()
    runs = dentist_runs(recs)
    results, predictions = build(recs, runs, train=recs[:5])
    out = write_report(results, tmp_path / "cmp", predictions)
    names = sorted(p.name for p in out.iterdir())
    assert names == ["chart.png", "predictions.jsonl", "report.md", "results.json"]
    data = json.loads(
        (out / "results.json").read_text(), parse_constant=lambda c: pytest.fail(f"{c} in JSON")
    )
    assert set(data["arms"]) == {"prompt_only", "rag", "finetuned", "finetuned_rag"}
    for arm in data["arms"].values():
        ci = arm["summary"]["metrics"]["correct"]
        assert ci["low"] <= ci["mean"] <= ci["high"] and ci["n"] == 40
    assert data["arms"]["finetuned"]["summary"]["by_seen"]["seen"]["metrics"]["correct"]["mean"] == 1.0
    assert data["arms"]["rag"]["summary"]["metrics"]["recall_at_k"]["mean"] == 1.0
    assert "recall_at_k" not in data["arms"]["finetuned"]["summary"]["metrics"]
    lines = (out / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == len(recs) * 4
    row = json.loads(lines[0])
    assert row["arm"] == "prompt_only" and row["id"] == "q0" and row["scores"]["correct"] == 1.0
    assert row["reference"] == "fact0" and row["prompt_tokens"] == 10
    rag_row = json.loads(lines[len(recs)])
    assert (
        rag_row["retrieved_doc_ids"] == ["doc0", "other"] and rag_row["retrieved_chunk_ids"][0] == "doc0::0"
    )
    md = (out / "report.md").read_text()
    assert "| arm | n | correct [95% CI]" in md
    assert "## Verdict" in md and results.verdict[0] in md
    assert "## Pairwise tests" in md and "## Seen vs unseen in training" in md and "## Costs" in md
    assert (out / "chart.png").read_bytes()[:8] == PNG_MAGIC


def test_verdict_claims_only_supported_differences() -> None:
    recs = records()
    results, _ = build(recs, dentist_runs(recs))
    text = " ".join(results.verdict)
    # Fine-tuning + RAG (38/40) vs persona prompt (4/40): 34 discordant pairs, all one way.
    assert results.verdict[0].startswith("Fine-tuning + RAG answered 95% [")
    assert "vs 10% [" in results.verdict[0] and "p < 0.001" in results.verdict[0]
    # Fine-tuning on top of retrieval: 3 discordant pairs (exact p = 0.25 before Holm): no claim.
    assert "Fine-tuning on top of retrieval: fine-tuning + RAG answered 95%" in text
    assert "vs 88% [" in text and "not a significant difference" in text
    # Unseen facts: fine-tuning = prompt-only there, retrieval carries them.
    assert "On facts not seen in training (n = 16)" in text
    assert "retrieval is what carries facts the model was never trained on" in text


def test_verdict_refuses_to_claim_a_noise_difference() -> None:
    recs = records(10, 0)
    runs = [
        run("prompt_only", recs, lambda i, r: i < 4),
        run("finetuned", recs, lambda i, r: i < 6, adapter=True),
    ]
    results, _ = build(recs, runs)
    first = results.verdict[0]
    assert first.startswith("No arm was significantly better than the persona prompt")
    assert "60% [" in first and "40% [" in first and "p = 0.50" in first  # exact McNemar: b=2, c=0
    assert not any("real improvement" in s for s in results.verdict)


def test_pairwise_tests_wired_with_known_p_values() -> None:
    recs = records(10, 0)
    runs = [
        run("a", recs, lambda i, r: True),
        run("b", recs, lambda i, r: False),
        run("c", recs, lambda i, r: i < 5),
    ]
    results, _ = build(recs, runs)
    rows = {(r.arm_a, r.arm_b): r for r in results.pairwise}
    assert set(rows) == {("a", "b"), ("a", "c"), ("b", "c")}
    ab, ac, bc = rows["a", "b"], rows["a", "c"], rows["b", "c"]
    assert ab.diff == 1.0 and ab.p_value == pytest.approx(2 / 2**10) and ab.test == "mcnemar-exact"
    assert ac.p_value == pytest.approx(2 / 2**5) and bc.p_value == pytest.approx(2 / 2**5)
    # Holm: smallest x3, then x2 with a running max
    assert ab.p_holm == pytest.approx(3 * 2 / 2**10)
    assert ac.p_holm == pytest.approx(2 * 2 / 2**5) and bc.p_holm == pytest.approx(2 * 2 / 2**5)
    ci = results.arms["a"].summary.metrics["correct"]
    assert (ci.mean, ci.low, ci.high, ci.n) == (1.0, 1.0, 1.0, 10)
    assert results.pairwise_by_seen["seen"][0].p_value == pytest.approx(2 / 2**10)
    assert "unseen" not in results.pairwise_by_seen
    # oriented the other way round, the difference changes sign
    assert results.pair("b", "a").diff == -1.0 and results.pair("b", "a").arm_a == "b"


def test_failed_arm_is_marked_and_others_reported(tmp_path) -> None:
    recs = records(6, 4)
    runs = dentist_runs(recs)
    runs[1] = ArmRun(name="rag", status="failed", error="RuntimeError: store exploded", retrieval=True)
    results, predictions = build(recs, runs)
    out = write_report(results, tmp_path, predictions)
    data = json.loads((out / "results.json").read_text())
    assert data["arms"]["rag"]["status"] == "failed" and "store exploded" in data["arms"]["rag"]["error"]
    assert data["arms"]["rag"]["summary"] is None
    assert data["arms"]["finetuned"]["status"] == "ok"
    assert len((out / "predictions.jsonl").read_text().splitlines()) == 3 * len(recs)
    assert all("rag" not in (r["arm_a"], r["arm_b"]) for r in data["pairwise"])
    md = (out / "report.md").read_text()
    assert "**failed**: RuntimeError: store exploded" in md
    assert any("The rag arm failed" in s for s in data["verdict"])


def test_a_failed_comparison_renders_its_status_and_errors(tmp_path) -> None:
    results = Results(
        status="failed",
        domain="tiny",
        error="1 step(s) after the arms failed",
        errors=["statistics: ValueError: boom"],
        phases={"prepare": 1.5},
    )
    write_report(results, tmp_path)
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["status"] == "failed" and data["errors"] == ["statistics: ValueError: boom"]
    md = (tmp_path / "report.md").read_text()
    assert "**Status: FAILED.**" in md and "statistics: ValueError: boom" in md and "| prepare | 1.5 |" in md


def test_results_round_trip_through_json_and_rerender_matches(tmp_path) -> None:
    """results.json -> Results -> the same report: `domainllm report` needs nothing else."""
    recs = records(6, 4)
    results, predictions = build(recs, dentist_runs(recs))
    write_report(results, tmp_path, predictions)
    original = (tmp_path / "report.md").read_text()
    back = Results.from_json(tmp_path)
    assert back.to_dict() == json.loads((tmp_path / "results.json").read_text())
    assert back.arms["finetuned"].summary.by_seen["seen"].main.mean == 1.0
    assert back.pair("finetuned_rag", "prompt_only").diff == pytest.approx(
        results.pair("finetuned_rag", "prompt_only").diff
    )
    (tmp_path / "report.md").write_text("stale")
    (tmp_path / "chart.png").unlink()
    rerender(tmp_path)
    assert (tmp_path / "report.md").read_text() == original
    assert (tmp_path / "chart.png").read_bytes()[:8] == PNG_MAGIC


def test_baselines_in_report_and_chart(tmp_path) -> None:
    recs = [
        QARecord(id=f"l{i}", question="?", answer=["yes", "no", "maybe"][i % 3], answer_type="label")
        for i in range(30)
    ]
    train = [
        QARecord(id=f"t{i}", question="?", answer="yes" if i % 4 else "no", answer_type="label")
        for i in range(20)
    ]
    runs = [run("prompt_only", recs, lambda i, r: r.answer == "yes")]
    runs[0].outputs = [
        QuestionOutput(answer="Yes.") for _ in recs
    ]  # always yes: same as the majority baseline
    results, _ = build(recs, runs, train=train)
    results.answer_types = {"label": 30}
    base = results.baselines.by_type["label"]
    assert base.answer == "yes" and base.correct.mean == pytest.approx(1 / 3)
    assert base.macro_f1.mean == pytest.approx((2 * 10 / (2 * 10 + 20)) / 3)
    assert results.arms["prompt_only"].summary.label.macro_f1.mean == pytest.approx(base.macro_f1.mean)
    sentences = verdict(results)
    assert any("No arm is clearly above the trivial baseline (33%" in s for s in sentences)
    assert "The persona prompt (100%) answered 'yes' to (nearly) every label question" in " ".join(sentences)
    md = render_markdown(results)
    assert "majority label" in md and "label: macro-F1" in md
    png = make_chart(results, tmp_path / "chart.png")
    assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 5000


def test_console_table_renders(tmp_path) -> None:
    from rich.console import Console

    recs = records(6, 4)
    results, predictions = build(recs, dentist_runs(recs))
    write_report(results, tmp_path, predictions)
    console = Console(record=True, width=140)
    print_results(Results.from_json(tmp_path), console=console)
    out = console.export_text()
    assert "finetuned_rag" in out and "correct [95% CI]" in out and results.verdict[0][:30] in out


def test_json_has_no_nan(tmp_path) -> None:
    recs = [QARecord(id="n", question="?", answer="5", answer_type="number")]
    runs = [run("prompt_only", recs, lambda i, r: False)]
    results, predictions = build(recs, runs)
    write_report(results, tmp_path, predictions)
    row = json.loads((tmp_path / "predictions.jsonl").read_text())
    assert row["scores"]["abs_error"] is None  # nan written as null, not NaN
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["arms"]["prompt_only"]["summary"]["metrics"]["correct"]["mean"] == 0.0
    assert not math.isnan(data["arms"]["prompt_only"]["costs"]["latency_p50_s"])


def test_score_runs_wires_loglik_embedding_and_recall() -> None:
    from domainllm.benchmark.embedding import embedding_scorer

    recs = [
        QARecord(
            id="c", question="Which?", answer="Local", answer_type="choice", options=("General", "Local")
        ),
        QARecord(id="t", question="When?", answer="Wednesday", doc_id="hours"),
    ]
    runs = [
        ArmRun(
            name="rag",
            retrieval=True,
            k=1,
            outputs=[
                QuestionOutput(answer="A. General", doc_ids=["prices"]),
                QuestionOutput(answer="Closed on Wednesday.", doc_ids=["prices", "hours"]),
            ],
            logliks=[[-5.0, -1.0], None],
        )
    ]
    scores = score_runs(recs, runs, ccfg=CompareConfig(), k=3, embedder=embedding_scorer())["rag"]
    assert scores[0]["choice_acc"] == 0.0 and scores[0]["choice_loglik_acc"] == 1.0
    assert "choice_loglik_acc" not in scores[1] and scores[1]["embed_sim"] > 0.3
    assert "recall_at_k" not in scores[0]  # no gold doc_id
    assert scores[1]["recall_at_k"] == 0.0  # the arm's own k = 1 wins over the default k = 3


def test_headline_makes_no_claim_about_a_pair_outside_the_planned_family() -> None:
    """With several fine-tuned runs the best arm may be finetuned_rag@R, which is tested against rag,
    not against the persona prompt: the headline must not call that untested gap chance."""
    recs = records()
    runs = [
        run("prompt_only", recs, lambda i, r: i % 10 == 0),
        run("rag", recs, lambda i, r: i % 2 == 0, retrieval=True),
        run("finetuned@a", recs, lambda i, r: i % 10 == 0, adapter=True, run="a"),
        run("finetuned@b", recs, lambda i, r: i % 10 == 0, adapter=True, run="b"),
        run("finetuned_rag@a", recs, lambda i, r: i % 2 == 0, adapter=True, retrieval=True, run="a"),
        run("finetuned_rag@b", recs, lambda i, r: i != 3, adapter=True, retrieval=True, run="b"),
    ]
    results, _ = build(recs, runs)
    results.runs = {"a": {}, "b": {}}  # what benchmark.comparison records; the recipe sentences read it
    results.verdict = verdict(results)
    assert results.pair("finetuned_rag@b", "prompt_only") is None  # not in the planned family
    first = results.verdict[0]
    assert first.startswith("The best arm, fine-tuning (b) + RAG, answered 98% [")
    assert "not one of this report's planned tests, so no claim is made" in first
    assert "within chance" not in first and "n/a" not in first
    # the planned comparison of that arm is still reported, and it is a real gain over RAG
    assert any(
        s.startswith("Recipe b, fine-tuned + RAG") and "a real improvement" in s for s in results.verdict
    )
