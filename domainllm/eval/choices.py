"""Reading which option or label a free-text answer names: "B.", "the answer is (b)", "Yes, because ...".

Small models answer multiple-choice questions in sentences; these parsers find the option (by
letter or by its text) and the label a generated answer states, the same way for every arm.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from domainllm.data.records import DEFAULT_LABELS
from domainllm.text import find_sublist, letter_index, tokens

__all__ = ["parse_choice", "parse_label"]

# --------------------------------------------------------------------------------------------------
# Multiple choice and labels
# --------------------------------------------------------------------------------------------------

# "B", "(B)", "[B]", "B.", "B)", "B:" at the very start. A bare capital followed by a word ("A patient
# should ...") is not a letter answer, so a delimiter or the end of the text is required.
_LEADING_LETTER_RE = re.compile(
    r"^\s*(?:[\(\[]\s*(?P<a>[A-Za-z])\s*[\)\]]|(?P<b>[A-Za-z])\s*[\.\):](?!\w)|(?P<c>[A-Za-z])\s*$)"
)
# "Answer: B", "the answer is (b)", "The correct option is C", "Answer: option D".
_ANSWER_PHRASE_RE = re.compile(
    r"\b(?:answer|option|choice)\s*(?:is\s*:?|:)\s*(?:option\s+|choice\s+)?"
    r"[\(\[]?\s*(?P<letter>[A-Za-z])\s*[\)\]]?(?![\w'])",
    re.IGNORECASE,
)
_MARKUP_CHARS = " \t\r\n*_`\"'"


def _letter_answer(prediction: str, n_options: int) -> int | None:
    stripped = prediction.strip(_MARKUP_CHARS)
    lead = _LEADING_LETTER_RE.match(stripped)
    if lead is not None:
        letter = lead.group("a") or lead.group("b") or lead.group("c")
        idx = letter_index(letter, n_options)
        if idx is not None:
            return idx
    for match in _ANSWER_PHRASE_RE.finditer(prediction):
        letter = match.group("letter")
        rest = prediction[match.end() :]
        # "the answer is a tablet": a lowercase a/an-like letter followed by a word is an article.
        if letter.islower() and re.match(r"\s+\w", rest):
            continue
        idx = letter_index(letter, n_options)
        if idx is not None:
            return idx
    return None


def parse_choice(prediction: str, options: Sequence[str]) -> int | None:
    """Index of the option the model chose, or None when it cannot be told.

    Order of evidence:

    1. A letter answer (A = 0, B = 1, ...; only letters within the number of options count): a leading
       ``"B"``, ``"(B)"``, ``"[B]"``, ``"B."``, ``"B)"``, ``"B:"`` (markdown ``**`` around it is ignored),
       else the first ``"Answer: B"`` / ``"the answer is b"`` / ``"the correct option is (C)"`` phrase.
       A lowercase letter followed by a word (``"the answer is a tablet"``) is read as an article.
    2. Otherwise the option whose normalised text occurs as whole tokens in the normalised prediction.
       When several do, an option whose text lies inside a longer matching option is dropped, so the
       longest wins (``"New York"`` over ``"York"``); if two unrelated options remain (``"Paris, not
       London"``, or two identical options) the result is None. "Longest wins" is applied only to
       nested options on purpose: preferring the longer of two unrelated mentions would give credit
       for a hedged answer by string length alone.
    3. Otherwise None (counted as wrong by the caller).
    """
    idx = _letter_answer(prediction, len(options))
    if idx is not None:
        return idx
    pred = tokens(prediction)
    matched = {}
    for i, option in enumerate(options):
        toks = tokens(option)
        if toks and find_sublist(pred, toks) >= 0:
            matched[i] = toks
    # An option contained in a longer matched option is a by-product of it ("York" in "New York").
    kept = [
        i
        for i, toks in matched.items()
        if not any(
            j != i and len(other) > len(toks) and find_sublist(other, toks) >= 0
            for j, other in matched.items()
        )
    ]
    return kept[0] if len(kept) == 1 else None


def parse_label(prediction: str, labels: Sequence[str] = DEFAULT_LABELS) -> str | None:
    """The label (as given in ``labels``) that appears first, as whole words, in the prediction.

    For PubMedQA-style yes/no/maybe questions, where models answer "Yes, because ...". Matching whole
    normalised tokens keeps "no" from firing inside "know" or "not". "First" means earliest position
    in the prediction; at the same position the longer label wins. The known cost: "There is no
    evidence against it, so yes" parses as "no"; prompts should ask for the label first.
    """
    pred = tokens(prediction)
    best: tuple[int, int, int] | None = None  # (position, -length, label index)
    for i, label in enumerate(labels):
        toks = tokens(label)
        pos = find_sublist(pred, toks)
        if pos < 0:
            continue
        key = (pos, -len(toks), i)
        if best is None or key < best:
            best = key
    return None if best is None else labels[best[2]]
