"""Text rules shared by the data checks and the scorers: how answers are normalised, how numbers are read.

One place for both, because a loader that accepts a ``number`` answer and a scorer that reads the
model's number must agree on what a number is (``data`` validates with these, ``eval`` scores with
them; neither imports the other).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache

__all__ = ["find_sublist", "letter_index", "normalize_text", "parse_number", "tokens"]

# --------------------------------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------------------------------

# Typographic quotes, primes and dashes -> ASCII. Models and documents mix both freely; without this
# "don’t" and "don't" would normalise differently.
_TYPOGRAPHIC = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "\u02bc": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u201f": '"',
        "\u2033": '"',
        "\u00ab": '"',
        "\u00bb": '"',
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2015": "-",
        "\u2212": "-",
    }
)
_THOUSANDS_COMMA_RE = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_NON_DECIMAL_DOT_RE = re.compile(r"(?<!\d)\.|\.(?!\d)")
_ARTICLES_RE = re.compile(r"\b(?:a|an|the)\b")


@lru_cache(maxsize=4096)
def _is_punct_or_symbol(ch: str) -> bool:
    """Unicode punctuation (P*) or symbol (S*: currency, math, emoji), except the dot we handle apart."""
    return ch != "." and unicodedata.category(ch)[0] in "PS"


def normalize_text(text: str) -> str:
    """Normalise text the SQuAD way so that formatting differences do not count as wrong answers.

    Why SQuAD normalisation: it is the de-facto standard for extractive/short-answer QA, so exact match
    and token F1 here mean what readers expect. Steps, in order:

    1. Unicode NFKC (full-width digits, non-breaking spaces, ligatures) and typographic quotes/dashes
       mapped to ASCII.
    2. Lowercase.
    3. Numbers: a comma between digits followed by exactly three digits is a thousands separator and is
       removed (``"1,250"`` -> ``"1250"``); a dot between two digits is a decimal point and is kept
       (``"1250.50"``). So ``"€1,250.50"`` -> ``"1250.50"``. Decimal commas (``"1,5"``) are not
       recognised and split into two tokens.
    4. Apostrophes are deleted (``"don't"`` -> ``"dont"``, ``"patient's"`` -> ``"patients"``); every other
       punctuation or symbol character (Unicode categories P* and S*, so currency signs, ``%``, ``/``,
       hyphens and markdown ``*`` too) becomes a space. SQuAD deletes punctuation instead; we split on it
       so that ``"Answer:Paris"`` or ``"yes/no"`` still yield separate tokens. For ordinarily spaced text
       the two agree, except that hyphenated words become two tokens (``"well-known"`` ==
       ``"well known"``).
    5. Drop the articles *a*, *an*, *the*; collapse whitespace.

    Signs are dropped with the hyphen (``"-3"`` -> ``"3"``): use :func:`parse_number` for numeric answers.
    """
    text = unicodedata.normalize("NFKC", text).translate(_TYPOGRAPHIC).lower()
    text = _THOUSANDS_COMMA_RE.sub("", text)
    text = _NON_DECIMAL_DOT_RE.sub(" ", text)
    text = text.replace("'", "")
    text = "".join(" " if _is_punct_or_symbol(ch) else ch for ch in text)
    text = _ARTICLES_RE.sub(" ", text)
    return " ".join(text.split())


def tokens(text: str) -> list[str]:
    """The normalised word tokens of ``text`` (what every token metric compares)."""
    return normalize_text(text).split()


def find_sublist(haystack: Sequence[str], needle: Sequence[str]) -> int:
    """Start index of the first contiguous occurrence of ``needle`` in ``haystack``, or -1."""
    n, m = len(haystack), len(needle)
    if m == 0 or m > n:
        return -1
    first = needle[0]
    for i in range(n - m + 1):
        if haystack[i] == first and list(haystack[i : i + m]) == list(needle):
            return i
    return -1


# --------------------------------------------------------------------------------------------------
# Numbers
# --------------------------------------------------------------------------------------------------

_NUMBER_RE = re.compile(
    r"(?P<sign>(?<![\w.])[-+\u2212])?"
    r"(?<![\w.,])"
    r"(?P<num>(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?|\.\d+)"
)
_NUMBER_WORDS = {
    "zero": 0.0,
    "one": 1.0,
    "two": 2.0,
    "three": 3.0,
    "four": 4.0,
    "five": 5.0,
    "six": 6.0,
    "seven": 7.0,
    "eight": 8.0,
    "nine": 9.0,
    "ten": 10.0,
    "eleven": 11.0,
    "twelve": 12.0,
    "half": 0.5,
}
_NUMBER_WORD_RE = re.compile(r"\b(" + "|".join(_NUMBER_WORDS) + r")\b", re.IGNORECASE)


def parse_number(text: str) -> float | None:
    """The first number written in ``text``, or None.

    Handled: integers and decimals (``"3"``, ``"1.5"``, ``".5"``), a sign directly before the digits
    (``"-3"``, ``"+2"``, Unicode minus), thousands commas in groups of three (``"1,250,000"``), and any
    currency sign, unit or ``%`` around the number, which is ignored (``"€1,250"`` -> 1250.0,
    ``"5%"`` -> 5.0, ``"500mg"`` -> 500.0). Digits glued to letters are part of a name, not a
    quantity, and are skipped (``"B12"``, ``"H2O"``).

    If the text holds no digits at all, the first of the words *zero* .. *twelve* or *half* is used
    (``"two tablets"`` -> 2.0). Digits always win over words, because "one of the 3 options" is far
    more common in model output than a quantity spelled out before a digit.

    Not handled (documented limits, not bugs): fractions (``"2 1/2"`` parses as 2), decimal commas
    (``"1,5"`` parses as 1), space-grouped thousands, scientific notation, multipliers (``"10k"``) and
    compound number words (``"twenty-one"``).
    """
    text = unicodedata.normalize("NFKC", text)
    match = _NUMBER_RE.search(text)
    if match is not None:
        value = float(match.group("num").replace(",", ""))
        return -value if match.group("sign") in ("-", "\u2212") else value
    word = _NUMBER_WORD_RE.search(text)
    if word is not None:
        return _NUMBER_WORDS[word.group(1).lower()]
    return None


def letter_index(letter: str, n_options: int) -> int | None:
    """The option index a single letter names ("B" or "b" -> 1), or None when it names no option."""
    if len(letter) != 1 or not letter.isalpha():
        return None
    idx = ord(letter.upper()) - ord("A")
    return idx if 0 <= idx < n_options else None
