"""How a script is read: cleaned, numbers and abbreviations written out, cut at sentences."""

from __future__ import annotations

import pytest

from gpu.errors import InputError
from gpu.speech.script import (
    MAX_SCRIPT_CHARS,
    PARAGRAPH_PAUSE,
    SENTENCE_PAUSE,
    chunks,
    normalise,
    number_words,
)


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("Dr. Who met Mr. Smith.", "Doctor Who met Mister Smith."),
        (
            "We sold 12,000 units, 3.5 times more.",
            "We sold twelve thousand units, three point five times more.",
        ),
        ("It is 42% done & 7 left.", "It is forty-two percent done and seven left."),
        ("In 2026 we grew.", "In two thousand twenty-six we grew."),
    ],
)
def test_english_numbers_and_abbreviations_are_spoken_words(text, said):
    assert normalise(text, "en") == said


def test_other_languages_keep_their_digits():
    assert normalise("Il y a 3 chats.", "fr") == "Il y a 3 chats."


def test_number_words():
    assert number_words(0) == "zero"
    assert number_words(1_000_001) == "one million one"
    assert number_words(999) == "nine hundred ninety-nine"


def test_sentences_group_into_chunks_and_blank_lines_pause_longer():
    text = "First one. " * 30 + "\n\n“Second” paragraph — here!"
    out = chunks(text, "en", max_chars=100)
    assert all(len(c.text) <= 100 for c in out)
    assert all(c.text.endswith(".") for c in out[:-1])  # cut at sentence ends only
    paragraph_end = [c.pause for c in out].index(PARAGRAPH_PAUSE)
    assert {c.pause for c in out[:paragraph_end]} == {SENTENCE_PAUSE}
    assert out[-1].text == '"Second" paragraph, here!'
    assert " ".join(c.text for c in out[: paragraph_end + 1]) == ("First one. " * 30).strip()


def test_a_sentence_longer_than_a_chunk_is_cut_at_clauses_then_words():
    long = "word " * 80 + "then, a clause; and another"
    out = chunks(long, "en", max_chars=60)
    assert all(len(c.text) <= 60 for c in out)
    assert " ".join(c.text for c in out).split() == long.split()


def test_limits_and_empty_scripts_are_refused_in_plain_words():
    with pytest.raises(InputError, match=f"at most {MAX_SCRIPT_CHARS:,} are spoken"):
        chunks("a" * (MAX_SCRIPT_CHARS + 1), "en")
    with pytest.raises(InputError, match="no words to speak"):
        chunks("\u200b\x07 \n\n ", "en")
