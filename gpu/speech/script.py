"""A script as a speech engine reads it: cleaned, normalised, cut into sentence-aligned chunks.

Speech models speak a few sentences well and drift on long inputs, so a script is synthesised
in chunks of whole sentences (a sentence longer than a chunk is cut at clauses, then words), each
followed by the pause its text asks for: a sentence end, or a longer one at a blank line. English
numbers and common abbreviations are written out, because models read "Dr." and "42" badly.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from gpu.errors import InputError

MAX_SCRIPT_CHARS = 5000
"""Longest script accepted, in characters (about five minutes of speech)."""
MAX_CHUNK_CHARS = 220
"""Longest piece synthesised at once: a few sentences."""
SENTENCE_PAUSE = 0.25
"""Seconds of silence after a chunk ending inside a paragraph."""
PARAGRAPH_PAUSE = 0.6
"""Seconds of silence at a blank line in the script."""

_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"')\]]*\s+")
_CLAUSE_END = re.compile(r"(?<=[,;:])\s+")
_PARAGRAPH = re.compile(r"\n\s*\n")
_TYPOGRAPHY = str.maketrans({"“": '"', "”": '"', "‘": "'", "’": "'", "–": "-", "—": ","})

ABBREVIATIONS_EN = {
    "Dr.": "Doctor",
    "Mr.": "Mister",
    "Mrs.": "Missus",
    "Ms.": "Miz",
    "Prof.": "Professor",
    "St.": "Saint",
    "e.g.": "for example",
    "i.e.": "that is",
    "etc.": "et cetera",
    "vs.": "versus",
    "%": " percent",
    "&": " and ",
}
_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SCALES = ((10**9, "billion"), (10**6, "million"), (1000, "thousand"), (100, "hundred"))


@dataclass(frozen=True)
class Chunk:
    """One piece synthesised at once, and the silence that follows it (seconds)."""

    text: str
    pause: float


def chunks(text: str, language: str, max_chars: int = MAX_CHUNK_CHARS) -> list[Chunk]:
    """The script as chunks in speaking order; InputError when nothing is left to say."""
    if len(text) > MAX_SCRIPT_CHARS:
        raise InputError(
            f"the script has {len(text):,} characters; at most {MAX_SCRIPT_CHARS:,} are spoken "
            "in one job: split it into several scripts"
        )
    out: list[Chunk] = []
    for paragraph in _PARAGRAPH.split(clean(text)):
        paragraph = normalise(" ".join(paragraph.split()), language)
        pieces = _group(_sentences(paragraph, max_chars), max_chars)
        out += [Chunk(p, SENTENCE_PAUSE) for p in pieces]
        if out:
            out[-1] = Chunk(out[-1].text, PARAGRAPH_PAUSE)
    if not out:
        raise InputError("the script has no words to speak: write the text to say in it")
    return out


def clean(text: str) -> str:
    """Unicode composed, typographic quotes and dashes made plain, control characters dropped."""
    text = unicodedata.normalize("NFC", text).translate(_TYPOGRAPHY).replace("\r\n", "\n")
    text = re.sub(r"[ \t]+,", ",", text)  # "a — b" reads "a, b"
    return "".join(ch for ch in text if ch == "\n" or unicodedata.category(ch)[0] != "C")


def normalise(text: str, language: str) -> str:
    """Numbers and abbreviations written out (English); other languages pass through."""
    if language != "en":
        return text
    for short, long in ABBREVIATIONS_EN.items():
        text = text.replace(short, long)
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)  # 12,000 -> 12000
    text = re.sub(r"\d+\.\d+", lambda m: _decimal(m.group()), text)
    text = re.sub(r"\d+", lambda m: number_words(int(m.group())), text)
    return " ".join(text.split())


def number_words(n: int) -> str:
    """English words for a whole number (digit by digit past the billions)."""
    if n >= 10**12:
        return " ".join(_ONES[int(d)] for d in str(n))
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else "-" + _ONES[n % 10])
    for scale, word in _SCALES:
        if n >= scale:
            head, rest = divmod(n, scale)
            return f"{number_words(head)} {word}" + (f" {number_words(rest)}" if rest else "")
    raise AssertionError(n)  # unreachable: every n >= 100 meets a scale


def _decimal(token: str) -> str:
    whole, _, frac = token.partition(".")
    return f"{number_words(int(whole))} point " + " ".join(_ONES[int(d)] for d in frac)


def _sentences(paragraph: str, max_chars: int) -> list[str]:
    out: list[str] = []
    for sentence in _SENTENCE_END.split(paragraph):
        if len(sentence) <= max_chars:
            out.append(sentence)
            continue
        for clause in _CLAUSE_END.split(sentence):
            out += _group(clause.split(" "), max_chars) if len(clause) > max_chars else [clause]
    return [s.strip() for s in out if s.strip()]


def _group(pieces: list[str], max_chars: int) -> list[str]:
    """Greedily join pieces with spaces into runs of at most max_chars (a longer piece alone)."""
    runs: list[str] = []
    for piece in pieces:
        if runs and len(runs[-1]) + 1 + len(piece) <= max_chars:
            runs[-1] += " " + piece
        else:
            runs.append(piece)
    return [r for r in runs if r.strip()]
