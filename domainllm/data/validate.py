"""Turning raw rows into :class:`QARecord` objects, and collecting the problems found on the way.

Every loader reads its format into plain rows and hands them here, so a CSV, a JSONL file and a
Hugging Face dataset are validated by the same rules and fail with the same kind of message:
``<file> line <n>, field '<name>': <problem>. <fix>``.

Errors are collected rather than raised one at a time: a user fixing a file wants to see the first
few problems at once, not one per run. :class:`ErrorCollector` keeps the first
:data:`MAX_REPORTED_ERRORS` (5) with their locations and the total count, and raises a single
:class:`~domainllm.errors.DataError` once a load has looked at everything; nothing half-loaded is
ever returned. Checks that look at a whole dataset (ids, doc_ids, answer lengths) are in
:mod:`domainllm.data.checks`; near-duplicate questions across splits in :mod:`domainllm.data.leakage`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from domainllm.data.records import ANSWER_TYPES, DEFAULT_LABELS, QARecord
from domainllm.errors import DataError
from domainllm.text import letter_index, normalize_text, parse_number

__all__ = [
    "KNOWN_FIELDS",
    "MAX_REPORTED_ERRORS",
    "ErrorCollector",
    "Located",
    "check_fields_mapping",
    "record_from_row",
]

MAX_REPORTED_ERRORS = 5
# Our record fields (plus the helpers a row may carry instead of ``answer`` or to route a row).
KNOWN_FIELDS = (
    "id",
    "question",
    "answer",
    "aliases",
    "answer_type",
    "options",
    "labels",
    "doc_id",
    "seen_in_train",
    "context",
    "answer_index",
    "split",
)
_TRUE = {"true", "yes", "1", "y", "t"}
_FALSE = {"false", "no", "0", "n", "f"}


@dataclass(frozen=True)
class Located:
    """A record with the place it came from, kept until every check has run (for error messages)."""

    record: QARecord
    where: str  # e.g. "data/qa/train.jsonl line 17"


class ErrorCollector:
    """Collects data problems and raises them as one :class:`DataError` paragraph."""

    def __init__(self, limit: int = MAX_REPORTED_ERRORS) -> None:
        self.limit = limit
        self.messages: list[str] = []
        self.count = 0

    def add(self, where: str, field: str | None, problem: str, fix: str = "") -> None:
        self.count += 1
        if len(self.messages) < self.limit:
            head = f"{where}, field '{field}'" if field else where
            text = f"{head}: {problem}."
            if fix:
                text += f" {fix.rstrip('.')}."
            self.messages.append(text)

    def __bool__(self) -> bool:
        return self.count > 0

    def raise_if_any(self) -> None:
        if not self.count:
            return
        if self.count == 1:
            msg = self.messages[0] + " Nothing was loaded."
        else:
            shown = len(self.messages)
            more = f" (showing the first {shown})" if self.count > shown else ""
            listed = " ".join(f"({i}) {m}" for i, m in enumerate(self.messages, 1))
            msg = f"Found {self.count} problems in the data{more}: {listed} Nothing was loaded."
        raise DataError(msg)


def check_fields_mapping(fields: Mapping[str, str] | None, extra: Sequence[str] = ()) -> dict[str, str]:
    """Validate ``data.fields`` ({our name: their column}) and return it as a plain dict."""
    fields = dict(fields or {})
    allowed = (*KNOWN_FIELDS, *extra)
    for ours in fields:
        if ours not in allowed:
            import difflib

            close = difflib.get_close_matches(ours, allowed, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            msg = (
                f"Config key 'data.fields' maps '{ours}', which is not a record field.{hint} "
                f"The keys are our names ({', '.join(allowed)}); the values are your file's column names."
            )
            raise DataError(msg)
    return fields


# ---------------------------------------------------------------------------------------------------
# Row -> record


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):  # pandas/CSV-via-datasets empty cells
        return True
    return isinstance(value, str) and not value.strip()


def _scalar_text(value: Any) -> str | None:
    """A string for str/int/float values (numbers from JSON become "85"), None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return None


def _text_list(value: Any) -> list[str] | None:
    """A list of strings from a list, a JSON list written as a string, or a ``|``-separated string."""
    if _is_missing(value):
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                return None
        else:
            return [part.strip() for part in text.split("|") if part.strip()]
    if isinstance(value, list | tuple):
        out = []
        for item in value:
            text = _scalar_text(item)
            if text is None:
                return None
            if text:
                out.append(text)
        return out
    return None


def _bool(value: Any) -> bool | str | None:
    """True/False/None, or the string "invalid"."""
    if _is_missing(value):
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    return "invalid"


def _letter_index(value: str, n_options: int) -> int | None:
    """An answer written as an option letter ("B", "b.", "C)") -> its index."""
    return letter_index(value.strip().rstrip(".)").strip(), n_options)


def record_from_row(
    row: Mapping[str, Any],
    *,
    where: str,
    errors: ErrorCollector,
    fields: Mapping[str, str] | None = None,
    generated_id: str | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> QARecord | None:
    """Build a record from one raw row, or add its problems to ``errors`` and return None.

    ``fields`` maps our names to the row's keys. ``generated_id`` is used when the row has no id
    key at all (formats where ids are optional); an id key that is present but empty is an error.
    Keys the mapping does not use are kept in ``meta`` so nothing the user wrote is silently lost.
    ``defaults`` fills our fields the row lacks (e.g. ``answer_type`` for a whole file).
    """
    fields = fields or {}
    defaults = defaults or {}
    key = {name: fields.get(name, name) for name in KNOWN_FIELDS}
    n_before = errors.count

    def get(name: str) -> Any:
        value = row.get(key[name])
        if _is_missing(value) and name in defaults:
            return defaults[name]
        return value

    def bad(name: str, problem: str, fix: str) -> None:
        errors.add(where, key[name], problem, fix)

    # id: required unless the format generates it.
    rid: str | None
    if key["id"] not in row and generated_id is not None:
        rid = generated_id
    else:
        rid = _scalar_text(get("id"))
        if not rid:
            bad("id", "is missing or empty", "Give every question a unique id (string)")

    question = _scalar_text(get("question"))
    if not question:
        bad("question", "is missing or empty", "Write the question text, or map your column with data.fields")

    # No answer_type: a row with options is a choice question, anything else free text.
    answer_type = _scalar_text(get("answer_type")) or (
        "choice" if not _is_missing(get("options")) else "text"
    )
    answer_type = answer_type.lower()
    if answer_type not in ANSWER_TYPES:
        bad(
            "answer_type",
            f"{answer_type!r} is not one of {', '.join(ANSWER_TYPES)}",
            "Fix the value, or leave it out for free-text answers",
        )

    aliases = _text_list(get("aliases"))
    if aliases is None:
        bad("aliases", f"{get('aliases')!r} is not a list of strings", 'Write e.g. ["Dr. Marlow", "Marlow"]')
        aliases = []

    # The answer: plain text/number, or a list/SQuAD-style dict (first = answer, rest = aliases).
    raw_answer = get("answer")
    if isinstance(raw_answer, Mapping) and "text" in raw_answer:
        raw_answer = raw_answer["text"]
    if isinstance(raw_answer, list | tuple):
        texts = _text_list(raw_answer) or []
        raw_answer = texts[0] if texts else None
        aliases = [*aliases, *(t for t in texts[1:] if t not in aliases)]
    answer = _scalar_text(raw_answer) if not _is_missing(raw_answer) else None

    options: list[str] | None = None
    raw_options = get("options")
    if not _is_missing(raw_options):
        options = _text_list(raw_options)
        if options is None:
            bad("options", f"{raw_options!r} is not a list of strings", 'Write e.g. ["amalgam", "composite"]')

    index_failed = False
    if answer_type == "choice" and options is not None:
        if len(options) < 2:
            bad("options", f"has {len(options)} option(s)", "A choice question needs at least two options")
        raw_index = get("answer_index")
        if not answer and not _is_missing(raw_index):
            index = raw_index if isinstance(raw_index, int) and not isinstance(raw_index, bool) else None
            if isinstance(raw_index, str) and raw_index.strip().lstrip("-").isdigit():
                index = int(raw_index)
            if index is None or not 0 <= index < len(options):
                index_failed = True
                bad(
                    "answer_index",
                    f"{raw_index!r} is not a 0-based index into {len(options)} options",
                    f"Use 0..{len(options) - 1}",
                )
            else:
                answer = options[index]
        elif answer and answer not in options:
            letter = _letter_index(answer, len(options))
            if letter is not None:
                answer = options[letter]  # "B" means the second option
        if answer and answer in options and options.count(answer) > 1:
            bad("options", f"the answer {answer!r} appears more than once", "Make the options distinct")

    if not answer:
        if not index_failed:
            bad("answer", "is missing or empty", "Write the reference answer (a short string)")
    elif answer_type == "choice":
        if options is None:
            bad(
                "options",
                "is missing but answer_type is 'choice'",
                "List the options, e.g. options: [A text, B text], with the answer being one of them",
            )
        elif answer not in options:
            bad(
                "answer",
                f"{answer!r} is not one of the options {options}",
                "Make the answer the exact text of the correct option (or its letter)",
            )
    elif answer_type == "number":
        if parse_number(answer) is None:
            bad("answer", f"{answer!r} holds no number but answer_type is 'number'", "Write e.g. 85 or '€85'")
    elif answer_type == "text" and not normalize_text(answer):
        bad("answer", f"{answer!r} is empty after normalisation", "Write an answer with content words")

    labels: list[str] | None = None
    raw_labels = get("labels")
    if not _is_missing(raw_labels):
        labels = _text_list(raw_labels)
        if labels is None:
            bad("labels", f"{raw_labels!r} is not a list of strings", 'Write e.g. ["yes", "no", "maybe"]')
    if answer_type == "label":
        labels = labels or list(DEFAULT_LABELS)
        if answer and answer not in labels:
            lowered = {label.lower(): label for label in labels}
            if answer.lower() in lowered:
                answer = lowered[answer.lower()]
            else:
                bad("answer", f"{answer!r} is not one of the labels {labels}", "Use one of the labels")

    seen = _bool(get("seen_in_train"))
    if seen == "invalid":
        bad("seen_in_train", f"{get('seen_in_train')!r} is not true or false", "Write true or false")
        seen = None

    doc_id = get("doc_id")
    doc_id = None if _is_missing(doc_id) else _scalar_text(doc_id)
    context = get("context")
    context = None if _is_missing(context) else str(context)

    if errors.count > n_before:
        return None
    used = {key[name] for name in KNOWN_FIELDS}
    meta = {k: v for k, v in row.items() if k not in used and not _is_missing(v)}
    return QARecord(
        id=str(rid),
        question=str(question),
        answer=str(answer),
        answer_type=answer_type,
        aliases=tuple(a for a in dict.fromkeys(aliases) if a != answer),
        options=tuple(options) if answer_type == "choice" and options is not None else None,
        labels=tuple(labels) if labels is not None else None,
        doc_id=doc_id,
        seen_in_train=seen,  # type: ignore[arg-type]
        context=context,
        meta=meta,
    )
