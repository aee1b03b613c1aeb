#!/usr/bin/env python3
"""Consistency check for the Larkspur Lane Dental benchmark dataset.

Usage:
    python data/dental/check_splits.py [DATASET_DIR]

DATASET_DIR defaults to the folder containing this script. It must contain
``docs/*.md``, ``qa/train.jsonl``, ``qa/val.jsonl``, ``qa/test.jsonl`` and
``README.md``. Standard library only.

On success the script prints a summary table and exits 0. On failure it prints
every problem found (file, line and field) and exits 2, the project's exit code for bad
input (the same as ``domainllm`` uses for a DataError). Near-duplicate
questions (token Jaccard >= 0.8 between a val/test question and a train
question) are reported as warnings and do not fail the check.

README counts format
--------------------
README.md must contain a counts table whose data rows look exactly like this
(one row per split plus a ``total`` row; the seen columns are ``-`` for train;
the numbers below are only an illustration):

    | split | rows | text | number | choice | seen_in_train true | seen_in_train false |
    |---|---|---|---|---|---|---|
    | train | 302 | 193 | 64 | 45 | - | - |
    | val | 56 | 36 | 11 | 9 | 37 | 19 |
    | test | 114 | 75 | 23 | 16 | 77 | 37 |
    | total | 472 | 304 | 98 | 70 | 114 | 56 |

and a line ``| documents | N |`` giving the number of documents. The numbers
must match the data. Other tables in the README are ignored.

The function :func:`check` can be imported (e.g. via importlib from this path);
it returns a dict of counts and raises ``ValueError`` on failure.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

SPLITS = ("train", "val", "test")
ANSWER_TYPES = ("text", "number", "choice")
KEY_ORDER = ("id", "question", "answer", "aliases", "answer_type", "options", "doc_id", "seen_in_train")
DOC_ID_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
MIN_DOCS, DOC_MIN_WORDS, DOC_MAX_WORDS = 40, 150, 500
MAX_ANSWER_WORDS = 20
MIN_TOTAL, MIN_TEST = 400, 100
UNSEEN_SHARE_RANGE = (0.25, 0.42)
NEAR_DUP_JACCARD = 0.8
README_ROW_RE = re.compile(r"^\|\s*(train|val|test|total)\s*\|(.*)\|\s*$")
README_DOCS_RE = re.compile(r"^\|\s*documents\s*\|\s*(\d+)\s*\|\s*$")


def _norm_question(q: str) -> str:
    """Lower-case, drop punctuation, collapse whitespace."""
    return " ".join(re.findall(r"[a-z0-9]+", q.lower()))


def _tokens(q: str) -> set:
    return set(re.findall(r"[a-z0-9']+", q.lower()))


def _jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a | b else 0.0


def _check_row(row, where: str, split: str, doc_ids: set, errors: list) -> None:
    def err(field: str, msg: str) -> None:
        errors.append(f"{where}: field '{field}': {msg}")

    if not isinstance(row, dict):
        errors.append(f"{where}: line is not a JSON object")
        return
    required = ["id", "question", "answer", "aliases", "answer_type", "doc_id"]
    for key in required:
        if key not in row:
            err(key, "missing required key")
    unknown = [k for k in row if k not in KEY_ORDER]
    for k in unknown:
        err(k, "unknown key")
    if unknown or any(k not in row for k in required):
        return
    order = [k for k in KEY_ORDER if k in row]
    if list(row) != order:
        err("id", f"keys out of order: {list(row)} (expected {order})")

    bad = [
        k
        for k in ("id", "question", "answer", "answer_type", "doc_id")
        if not isinstance(row[k], str) or not row[k].strip()
    ]
    for key in bad:
        err(key, "must be a non-empty string")
    if bad:
        return
    if not row["id"].startswith(f"{split}-"):
        err("id", f"id {row['id']!r} should start with '{split}-'")
    if not row["question"].rstrip().endswith("?"):
        err("question", "question must end with '?'")
    if not isinstance(row["aliases"], list) or not all(
        isinstance(a, str) and a.strip() for a in row["aliases"]
    ):
        err("aliases", "must be a list of non-empty strings")
    n_words = len(row["answer"].split())
    if n_words > MAX_ANSWER_WORDS:
        err("answer", f"answer has {n_words} words (max {MAX_ANSWER_WORDS})")

    atype = row["answer_type"]
    if atype not in ANSWER_TYPES:
        err("answer_type", f"{atype!r} is not one of {ANSWER_TYPES}")
    if atype == "choice":
        opts = row.get("options")
        if (
            not isinstance(opts, list)
            or not 3 <= len(opts) <= 4
            or not all(isinstance(o, str) and o for o in opts)
        ):
            err("options", "choice rows need 'options': a list of 3 or 4 non-empty strings")
        elif len(set(opts)) != len(opts):
            err("options", "options contain duplicates")
        elif row["answer"] not in opts:
            err("options", f"answer {row['answer']!r} is not exactly one of the options")
    elif "options" in row:
        err("options", "only choice rows may have 'options'")
    if atype == "number":
        try:
            float(row["answer"])
        except ValueError:
            err("answer", f"number answer {row['answer']!r} does not parse as a float")

    if row["doc_id"] not in doc_ids:
        err("doc_id", f"unknown doc {row['doc_id']!r} (no docs/{row['doc_id']}.md)")

    if split == "train":
        if "seen_in_train" in row:
            err("seen_in_train", "must be absent in train rows")
    else:
        if "seen_in_train" not in row:
            err("seen_in_train", "missing (required in val/test rows)")
        elif not isinstance(row["seen_in_train"], bool):
            err("seen_in_train", "must be true or false")


def _check_docs(ddir: Path, errors: list) -> dict:
    docs_dir = ddir / "docs"
    if not docs_dir.is_dir():
        errors.append(f"{docs_dir}: docs folder not found")
        return {}
    words = {}
    for p in sorted(docs_dir.glob("*.md")):
        rel = f"docs/{p.name}"
        if not DOC_ID_RE.match(p.stem):
            errors.append(f"{rel}: doc id {p.stem!r} is not lowercase kebab-case")
        text = p.read_text(encoding="utf-8")
        if not text.startswith("# "):
            errors.append(f"{rel}:1: document must start with a '# Title' line")
        n = len(text.split())
        if not DOC_MIN_WORDS <= n <= DOC_MAX_WORDS:
            errors.append(f"{rel}: {n} words (must be {DOC_MIN_WORDS}-{DOC_MAX_WORDS})")
        words[p.stem] = n
    if len(words) < MIN_DOCS:
        errors.append(f"docs/: {len(words)} documents found (need >= {MIN_DOCS})")
    return words


def _check_readme(ddir: Path, counts: dict, errors: list) -> None:
    path = ddir / "README.md"
    if not path.is_file():
        errors.append("README.md: not found (it must contain the counts table)")
        return
    expected = {}
    for name in (*SPLITS, "total"):
        s = counts["total"] if name == "total" else counts["splits"][name]
        seen = ("-", "-") if name == "train" else (str(s["seen_true"]), str(s["seen_false"]))
        expected[name] = [str(s["rows"]), *(str(s[t]) for t in ANSWER_TYPES), *seen]
    found, docs_found = {}, None
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        m = README_ROW_RE.match(line.strip())
        if m:
            cells = [c.strip() for c in m.group(2).split("|")]
            found[m.group(1)] = (lineno, cells)
        m = README_DOCS_RE.match(line.strip())
        if m:
            docs_found = (lineno, int(m.group(1)))
    for name, exp in expected.items():
        if name not in found:
            errors.append(f"README.md: counts row '| {name} | ... |' not found")
            continue
        lineno, cells = found[name]
        if cells != exp:
            errors.append(f"README.md:{lineno}: counts row '{name}' is {cells}, data says {exp}")
    if docs_found is None:
        errors.append("README.md: line '| documents | N |' not found")
    elif docs_found[1] != counts["docs"]:
        errors.append(f"README.md:{docs_found[0]}: documents = {docs_found[1]}, data says {counts['docs']}")


def check(dataset_dir: Path) -> dict:
    """Validate the dataset in ``dataset_dir``; return counts or raise ValueError."""
    ddir = Path(dataset_dir)
    errors: list = []
    warnings: list = []
    doc_words = _check_docs(ddir, errors)
    doc_ids = set(doc_words)

    rows = {s: [] for s in SPLITS}  # split -> list of (where, row), rows that passed the row checks
    parsed = []  # every (where, row) that parsed as a JSON object, for uniqueness checks
    for split in SPLITS:
        rel = f"qa/{split}.jsonl"
        path = ddir / rel
        if not path.is_file():
            errors.append(f"{rel}: file not found")
            continue
        with path.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                where = f"{rel}:{lineno}"
                if not line.strip():
                    errors.append(f"{where}: empty line")
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    errors.append(f"{where}: invalid JSON: {exc}")
                    continue
                if isinstance(row, dict):
                    parsed.append((where, row))
                n_before = len(errors)
                _check_row(row, where, split, doc_ids, errors)
                if len(errors) == n_before:
                    rows[split].append((where, row))

    # ids unique across splits; questions unique across splits
    seen_ids, seen_q = {}, {}
    for where, row in parsed:
        rid, question = row.get("id"), row.get("question")
        if isinstance(rid, str):
            if rid in seen_ids:
                errors.append(f"{where}: field 'id': duplicate id {rid!r} (first at {seen_ids[rid]})")
            else:
                seen_ids[rid] = where
        if isinstance(question, str):
            q = _norm_question(question)
            if q in seen_q:
                errors.append(
                    f"{where}: field 'question': same question as {seen_q[q]} (case/punctuation-insensitive)"
                )
            else:
                seen_q[q] = where

    # near-duplicates (warning only)
    train_tok = [(w, _tokens(r["question"])) for w, r in rows["train"]]
    for split in ("val", "test"):
        for where, row in rows[split]:
            a = _tokens(row["question"])
            for twhere, b in train_tok:
                j = _jaccard(a, b)
                if j >= NEAR_DUP_JACCARD:
                    warnings.append(f"{where} ~ {twhere}: near-duplicate questions (Jaccard {j:.2f})")

    # counts
    splits = {}
    for split in SPLITS:
        rs = [r for _, r in rows[split]]
        c = {"rows": len(rs)}
        for t in ANSWER_TYPES:
            c[t] = sum(1 for r in rs if r["answer_type"] == t)
        c["seen_true"] = sum(1 for r in rs if r.get("seen_in_train") is True)
        c["seen_false"] = sum(1 for r in rs if r.get("seen_in_train") is False)
        splits[split] = c
    total = {k: sum(splits[s][k] for s in SPLITS) for k in ("rows", *ANSWER_TYPES, "seen_true", "seen_false")}
    per_doc = {d: 0 for d in doc_ids}
    for split in SPLITS:
        for _, r in rows[split]:
            per_doc[r["doc_id"]] = per_doc.get(r["doc_id"], 0) + 1
    test = splits["test"]
    unseen_share = test["seen_false"] / test["rows"] if test["rows"] else 0.0
    counts = {
        "docs": len(doc_ids),
        "splits": splits,
        "total": total,
        "test_unseen_share": unseen_share,
        "questions_per_doc": per_doc,
        "warnings": warnings,
    }

    if not errors:  # count thresholds only make sense on clean rows
        if total["rows"] < MIN_TOTAL:
            errors.append(f"qa/: {total['rows']} pairs in total (need >= {MIN_TOTAL})")
        if test["rows"] < MIN_TEST:
            errors.append(f"qa/test.jsonl: {test['rows']} rows (need >= {MIN_TEST})")
        lo, hi = UNSEEN_SHARE_RANGE
        if not lo <= unseen_share <= hi:
            errors.append(
                f"qa/test.jsonl: share of seen_in_train=false is {unseen_share:.3f} (must be {lo}-{hi})"
            )
    _check_readme(ddir, counts, errors)

    if errors:
        shown = errors[:50]
        more = f"\n... and {len(errors) - 50} more" if len(errors) > 50 else ""
        raise ValueError(f"{len(errors)} problem(s) in {ddir}:\n" + "\n".join(shown) + more)
    return counts


def format_summary(counts: dict) -> str:
    head = ("split", "rows", "text", "number", "choice", "seen true", "seen false")
    lines = ["  ".join(f"{h:>10}" for h in head)]
    for name in (*SPLITS, "total"):
        s = counts["total"] if name == "total" else counts["splits"][name]
        seen = ("-", "-") if name == "train" else (s["seen_true"], s["seen_false"])
        vals = (name, s["rows"], s["text"], s["number"], s["choice"], *seen)
        lines.append("  ".join(f"{v:>10}" for v in vals))
    per_doc = counts["questions_per_doc"].values()
    lines.append(f"documents: {counts['docs']}   questions per doc: min {min(per_doc)}, max {max(per_doc)}")
    lines.append(f"test share seen_in_train=false: {counts['test_unseen_share']:.3f}")
    return "\n".join(lines)


def main(argv: list) -> int:
    ddir = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent
    try:
        counts = check(ddir)
    except ValueError as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 2  # bad input, as in the domainllm CLI; 1 stays free for crashes of the script itself
    for w in counts["warnings"]:
        print(f"WARNING: {w}", file=sys.stderr)
    print(format_summary(counts))
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
