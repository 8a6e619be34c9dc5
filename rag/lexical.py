"""Lexical view of the knowledge base: BM25 over the chunks, the corpus vocabulary, and spelling
correction against it.

Dense retrieval misses exact terms (plan names, "COBRA", "FSA") and is hurt by typos; BM25 with
stemming catches the terms and the vocabulary tells which words of a question the documents never
mention. All of it only works in the documents' own language: a question in another language
shares no words with them, so callers use it only when the question is in `language`.
"""
from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache

import bm25s
import numpy as np
import Stemmer
from rapidfuzz.distance import DamerauLevenshtein
from spellchecker import SpellChecker

from rag.language import plain

STEMMER_NAMES = {"es": "spanish", "en": "english", "pt": "portuguese", "fr": "french"}
STOPWORD_LISTS = {
    "es": bm25s.stopwords.STOPWORDS_SPANISH,
    "en": bm25s.stopwords.STOPWORDS_EN,
    "pt": bm25s.stopwords.STOPWORDS_PORTUGUESE,
    "fr": bm25s.stopwords.STOPWORDS_FRENCH,
}
# How customers phrase a request on WhatsApp, not what it is about: texting shorthand, greetings and
# asking words. Without them "explícame con detalle las tarifas" is about the tarifas alone.
CHAT_STOPWORDS = {
    "q", "k", "x", "xq", "pq", "pa", "porfa", "hola", "oye", "oigan", "ok", "gracias", "favor", "buenas",
    "explicame", "explicar", "dime", "digame", "decirme", "cuentame", "contarme", "detalle", "detalles",
    "informacion", "info", "necesito", "quiero", "quisiera", "saber", "ayuda", "ayudar", "ayudame",
}
CORRECTIONS_CACHED = 256
SHORT_STEM = 4  # letters; a shorter stem alone does not make a word known
MIN_CORRECTABLE = 5  # shorter words are too ambiguous to correct ("mas", "ley")
WORD = re.compile(r"\w+")
ACCENTED = dict(zip("aeiou", "áéíóú"))
ACCENTED_ENDING_CHARS = 5  # verb and noun endings that carry an accent: -arían, -ción, -ía


@lru_cache(maxsize=4)
def _dictionary_stems(language: str) -> frozenset[str]:
    """Stems of the language's dictionary words (pyspellchecker's list, without accents): a word
    whose stem is here is a real word in some form ("gustaría", "harían"), not a typo."""
    try:
        words = SpellChecker(language=language).word_frequency.dictionary.keys()
    except ValueError:  # no word list for this language
        return frozenset()
    return frozenset(_stemmer(language).stemWords([plain(w) for w in words]))


def _accented_endings(word: str) -> list[str]:
    """The word with one vowel of its ending accented: customers skip accents, and the stemmer only
    strips an ending it recognises ("cobrarian" stems to nothing known, "cobrarían" to "cobr")."""
    start = max(0, len(word) - ACCENTED_ENDING_CHARS)
    return [word[:i] + ACCENTED[c] + word[i + 1:] for i, c in enumerate(word) if i >= start and c in ACCENTED]


def _stemmer(language: str) -> Stemmer.Stemmer:
    return Stemmer.Stemmer(STEMMER_NAMES.get(language, "spanish"))


class LexicalIndex:
    """BM25 and vocabulary over a snapshot of the chunks (`ids[i]` has text `texts[i]`)."""

    def __init__(self, ids: list[str], texts: list[str], language: str = "es"):
        self.ids = ids
        self.language = language
        self._stemmer = _stemmer(language)
        self._stopwords = set(STOPWORD_LISTS.get(language, ())) | CHAT_STOPWORDS
        self._dictionary_stems = _dictionary_stems(language)
        words = Counter(w for text in texts for w in WORD.findall(plain(text)))
        self._frequency = words
        self._words_of_stem: dict[str, list[str]] = {}
        self._by_length: dict[int, list[str]] = {}
        for word in words:
            self._words_of_stem.setdefault(self._stemmer.stemWord(word), []).append(word)
            self._by_length.setdefault(len(word), []).append(word)
        # search and the relevance check correct the same question: once per snapshot is enough
        self._corrected = lru_cache(maxsize=CORRECTIONS_CACHED)(self._correct_text)
        self._bm25 = bm25s.BM25()
        if texts:
            self._bm25.index([self.terms(text) for text in texts], show_progress=False)

    def terms(self, text: str) -> list[str]:
        """Stemmed content words."""
        return [self._stemmer.stemWord(w) for w in WORD.findall(plain(text)) if w not in self._stopwords]

    def search(self, text: str, n: int) -> list[tuple[str, float]]:
        """Up to n (chunk id, BM25 score) pairs with a positive score, best first."""
        terms = self.terms(text)
        if not self.ids or not terms:
            return []
        scores = self._bm25.get_scores(terms)
        matching = np.flatnonzero(scores > 0)
        if len(matching) > n:  # the n best without sorting them all: those above the n-th best score,
            kth = np.partition(scores[matching], -n)[-n]  # and as many equal to it as fit, first ones first
            above = np.flatnonzero(scores[matching] > kth)
            tied = np.flatnonzero(scores[matching] == kth)[: n - len(above)]
            matching = matching[np.sort(np.concatenate([above, tied]))]
        best = matching[np.argsort(-scores[matching], kind="stable")]  # stable: ties keep index order
        return [(self.ids[i], float(scores[i])) for i in best]

    def knows(self, word: str) -> bool:
        """The documents use this word in some form ("inscribo" is known from "inscribirse"), even
        typed without the accent its ending needs ("cobrarian" from "cobrar")."""
        if word in self._frequency:
            return True
        return any(self._knows_stem(self._stemmer.stemWord(form), word) for form in [word, *_accented_endings(word)])

    def _knows_stem(self, stem: str, word: str) -> bool:
        """Whether the documents use a word of this stem. A stem of a few letters is shared by
        unrelated words ("covid" and "covered": "cov"), so there it must also be a stem of the
        language's words ("harían": "har"), or `word` begin as a document word of that stem does, one
        letter past the stem ("meses" as "mes", not "covid" as "cove…")."""
        if len(stem) >= SHORT_STEM or stem in self._dictionary_stems:
            return stem in self._words_of_stem
        return any(word.startswith(known[: len(stem) + 1]) for known in self._words_of_stem.get(stem, ()))

    def correct(self, text: str) -> str:
        """Fix typos of words the documents use ("cosegruo" → "coseguro"). A word is left alone when
        the documents or the language's dictionary know it, so "carro" never becomes "cargo"."""
        return self._corrected(text)

    def _correct_text(self, text: str) -> str:
        return WORD.sub(lambda match: self._correct_word(match.group(0)), text)

    def unknown_terms(self, text: str) -> list[str]:
        """Content words of `text` (unaccented) that the documents never use in any form: "perro"
        in a question about "mi perro", but also "oigan". Correct typos first."""
        words = WORD.findall(plain(text))
        return [w for w in words if len(w) > 3 and not w.isdigit() and w not in self._stopwords and not self.knows(w)]

    def _correct_word(self, word: str) -> str:
        lowered = plain(word)
        if (len(lowered) < MIN_CORRECTABLE or lowered.isdigit() or self.knows(lowered)
                or not self._dictionary_stems or self._stemmer.stemWord(lowered) in self._dictionary_stems):
            return word
        limit = 1 if len(lowered) < 10 else 2
        candidates = [
            (DamerauLevenshtein.distance(lowered, known, score_cutoff=limit), -self._frequency[known], known)
            for size in range(len(lowered) - limit, len(lowered) + limit + 1)
            for known in self._by_length.get(size, ())
        ]
        distance, _, best = min(candidates, default=(limit + 1, 0, word))
        return best if distance <= limit else word
