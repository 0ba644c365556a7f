"""Matching keys for words in English and Arabic: casefolded, normalized, stemmed.

A word matches another when their key sets meet. Keys include the Snowball
stem (English or Arabic), and for Arabic words also the word with common
proclitics removed ("وميتا" -> "ميتا", "بالمصدر" -> "مصدر"), since the Arabic
stemmer leaves names alone or cuts them wrongly.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Any

_ARABIC = re.compile(r"[\u0600-\u06ff]")
_DIACRITICS = re.compile(r"[\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed\u0640]")
_FOLD = str.maketrans(
    {"أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ى": "ي", "ة": "ه", "ؤ": "و", "ئ": "ي"}
)
_PROCLITICS = ("وال", "بال", "كال", "فال", "لل", "ال", "و", "ف", "ب", "ل", "ك", "س")
# Words with their contraction: "won't" is one token, so negation can see it.
_WORD = re.compile(r"[\w\u0610-\u061a\u064b-\u065f\u0670]+(?:['’][\w]+)?")


@lru_cache(maxsize=2)
def _stemmer(language: str) -> Any:
    """Snowball's stemmer, loaded on first use: a run without claims never needs it."""
    import snowballstemmer

    return snowballstemmer.stemmer(language)


def fold(text: str) -> str:
    """Casefold and normalize letters (Arabic alef/ya/ta marbuta forms, no diacritics).
    A word is folded once per process (the matcher folds each passage's words for
    every claim); longer texts are not kept."""
    return _fold_word(text) if len(text) <= 32 else _fold(text)


@lru_cache(maxsize=65536)
def _fold_word(text: str) -> str:
    return _fold(text)


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    return _DIACRITICS.sub("", text).translate(_FOLD).replace("’", "'")


def raw_words(text: str) -> list[str]:
    """Word tokens as written (possessive 's dropped), for case-sensitive names."""
    found = _WORD.findall(unicodedata.normalize("NFKC", text))
    return [w[:-2] if w.endswith(("'s", "’s")) else w for w in found]


def words(text: str) -> list[str]:
    """Folded word tokens (contractions kept whole), aligned with ``raw_words``."""
    return [fold(w) for w in raw_words(text)]


@lru_cache(maxsize=65536)
def keys(word: str) -> frozenset[str]:
    """Every form of a folded word that should count as the same word."""
    if _ARABIC.search(word):
        forms = {word}
        for p in _PROCLITICS:
            if word.startswith(p) and len(word) - len(p) >= 2:
                forms.add(word[len(p) :])
        return frozenset(forms | {_stemmer("arabic").stemWord(f) for f in forms})
    base = word[:-2] if word.endswith("'s") else word
    return frozenset({word, base, _stemmer("english").stemWord(base)})
