"""Retrieve: the best documents for a question (dense + BM25 fusion), and whether they answer it.

Measured on our question sets (eval/README.md): dense retrieval alone ranks the right page first
for 65 % of questions; fusing it with BM25 (stemmed, typo-corrected) raises that to 75 % and MRR
from .77 to .85. BM25 only helps questions in the documents' own language, so other languages
get dense retrieval alone.
"""
from __future__ import annotations

import functools
import re
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from langchain_core.embeddings import Embeddings

from rag.language import detect_language, plain
from rag.extract import answer_kind, asked_about, names_of_situation
from rag.lexical import CHAT_STOPWORDS, STOPWORD_LISTS, WORD, LexicalIndex
from rag.store import Hit, KnowledgeIndex, cosine

FOLLOW_UP_MAX_WORDS = 16  # a message that goes on from the previous one ("y si…") may be long
SHORT_FOLLOW_UP_WORDS = 8  # one that names nothing itself is short ("¿y cuánto cuesta?")
CANDIDATE_CHUNKS = 50  # per ranker, before keeping one chunk per document
LEXICAL_WEIGHT = 0.3  # of the fused rank score; dense gets the rest
RRF_K = 60  # the usual reciprocal-rank-fusion constant: damps the difference between ranks 1 and 2
REFRESH_SECONDS = 5.0  # how stale the lexical index may be after another process ingests
FOLLOW_UP_MARGIN = 0.02  # below COVERED_MEANING_THRESHOLD, for a follow-up judged on its own (measured)
QUERY_VECTORS_CACHED = 256  # search and the relevance check embed the same text: embed it once
EMBEDDING_THREADS = 4  # texts embedded at once per process; a local embedder caps it at its engines
# How customers announce that a short message is not a follow-up ("otra cosa, ¿cómo pago la factura?")
GOES_ON = re.compile(r"^(y|e|o|pero|entonces|o sea|ademas|tambien|si|and|but|or|also|if|what about|how about)\b")
POINTS_BACK = re.compile(r"\b(eso|esa|ese|esos|esas|ello|ellos|ellas|mism[oa]s?|alli|ahi|it|that|those|them|there)\b")
FUNCTION_WORDS = frozenset(plain(word) for words in STOPWORD_LISTS.values() for word in words) | CHAT_STOPWORDS
TOPIC_CHANGE = re.compile(r"\b(otra cosa|otra pregunta|otra duda|otro tema|cambiando de tema|por cierto|"
                          r"another question|different question|by the way|btw)\b")


@dataclass(frozen=True)
class Turn:
    role: str  # "user" or "assistant"
    text: str


def search_text(question: str, history: list[Turn]) -> str:
    """What to search for: a follow-up ("y eso cuánto cuesta?") together with the customer's
    previous message, any other message alone."""
    earlier = [t.text for t in history if t.role == "user"]
    if earlier and is_follow_up(question, earlier[-1]):
        return f"{earlier[-1]}\n{question}"
    return question


def is_follow_up(question: str, previous: str) -> bool:
    """Whether a message needs the customer's previous one to be understood: one that goes on from
    it ("y…", "si…"), points back at it ("eso", "ellos"), names almost nothing itself ("¿cuánto
    cuesta?") or follows a message that told the customer's situation ("vivo en New York"); not one
    that says it changes the subject, nor a question of its own ("cómo doy de baja el servicio"
    right after a question about prices)."""
    text = plain(question).strip(" ¿¡")
    words = len(text.split())
    if words > FOLLOW_UP_MAX_WORDS or TOPIC_CHANGE.search(text):
        return False
    if GOES_ON.search(text) or POINTS_BACK.search(text) or not _asks(previous):
        return True
    named = [word for word in WORD.findall(asked_about(question)) if word not in FUNCTION_WORDS]
    return words <= SHORT_FOLLOW_UP_WORDS and not named


def _asks(message: str) -> bool:
    return "?" in message or bool(answer_kind(message))


def fuse(dense: list[Hit], lexical: list[Hit], lexical_weight: float) -> list[Hit]:
    """Weighted reciprocal-rank fusion of two rankings of documents (one hit per source)."""
    scores: dict[str, float] = {}
    hits: dict[str, Hit] = {}
    for ranking, weight in ((dense, 1 - lexical_weight), (lexical, lexical_weight)):
        for rank, hit in enumerate(ranking, 1):
            scores[hit.source] = scores.get(hit.source, 0.0) + weight / (RRF_K + rank)
            hits.setdefault(hit.source, hit)
    return sorted(hits.values(), key=lambda hit: -scores[hit.source])


def best_per_source(hits: list[Hit]) -> list[Hit]:
    """Keep each document's best chunk: several chunks of one page would crowd out other pages."""
    best: dict[str, Hit] = {}
    for hit in hits:
        best.setdefault(hit.source, hit)
    return list(best.values())


@dataclass(frozen=True)
class Snapshot:
    """What a retriever holds in memory between ingests: every chunk's text and metadata, and the
    lexical index over them. Chroma is asked only for ids and scores, the cheap part."""
    chunks: dict[str, tuple[str, dict]]
    lexical: LexicalIndex
    revision: str

    @functools.cached_property
    def pages(self) -> dict[str, list[Hit]]:
        """Each document's chunks in reading order (their `position`; an index built before chunks
        had one keeps the order they were stored in)."""
        pages: dict[str, list[Hit]] = {}
        for chunk_id, (text, metadata) in self.chunks.items():
            pages.setdefault(metadata.get("source", ""), []).append(Hit(chunk_id, text, metadata, 0.0))
        for chunks in pages.values():
            chunks.sort(key=lambda hit: hit.metadata.get("position", 0))
        return pages

    @classmethod
    def read(cls, index: KnowledgeIndex, language: str) -> Snapshot:
        revision = index.revision()  # before reading: a change while reading triggers a re-read
        ids, texts, metadatas = index.contents()
        return cls(dict(zip(ids, zip(texts, metadatas))), LexicalIndex(ids, texts, language), revision)


class QueryVectors:
    """Query vectors, each text embedded once and several texts at a time.

    Answering one question embeds up to four short texts (the question, and for the relevance check
    the question without its unknown words, and a follow-up alone): started together, they take
    about as long as the slowest instead of the sum."""

    def __init__(self, embedder: Embeddings, size: int = QUERY_VECTORS_CACHED):
        self._embed = embedder.embed_query
        self._size = size
        self._futures: OrderedDict[str, Future] = OrderedDict()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(EMBEDDING_THREADS, thread_name_prefix="embed")

    def start(self, texts: list[str]) -> None:
        """Start embedding `texts`, in this order, unless they are embedded or under way already."""
        for text in texts:
            self._future(text)

    def get(self, text: str) -> list[float]:
        return self._future(text).result()

    def _future(self, text: str) -> Future:
        with self._lock:
            future = self._futures.get(text)
            if future is None or (future.done() and future.exception()):  # a failed call is retried
                future = self._futures[text] = self._pool.submit(self._embed, text)
                while len(self._futures) > self._size:
                    self._futures.popitem(last=False)
            self._futures.move_to_end(text)
            return future


class Retriever:
    def __init__(self, index: KnowledgeIndex, embedder: Embeddings, k: int, threshold: float,
                 covered_meaning_threshold: float = 0.0, language: str = "es"):
        self.index = index
        self.embedder = embedder
        self.k = k
        self.threshold = threshold
        self.covered_meaning_threshold = covered_meaning_threshold
        self.language = language
        self._vectors = QueryVectors(embedder)
        self._snapshot: Snapshot | None = None
        self._checked_at = float("-inf")
        self._lock = threading.Lock()

    def search(self, question: str, history: list[Turn] = ()) -> list[Hit]:
        """The best chunk of each of the k best documents, best first; `score` is the dense
        cosine similarity whichever ranker found it."""
        snapshot = self.snapshot()
        text, use_lexical = self._query(snapshot, question, history)
        judged = [t for text_and_covered in self._meaning_checks(snapshot, question, history) for t in text_and_covered[:2]]
        self._vectors.start([text, *judged])  # the relevance check's texts are embedded meanwhile
        vector = self._vectors.get(text)
        dense = best_per_source(self._hits(snapshot, self.index.nearest(vector, CANDIDATE_CHUNKS)))
        if not use_lexical:
            return dense[: self.k]
        found = [chunk_id for chunk_id, _ in snapshot.lexical.search(text, CANDIDATE_CHUNKS)]
        scores = self.index.scores(found, vector) if found else {}
        ranked_lexically = best_per_source(self._hits(snapshot, [(i, scores[i]) for i in found if i in scores]))
        return fuse(dense, ranked_lexically, LEXICAL_WEIGHT)[: self.k]

    def question_vector(self, text: str) -> list[float]:
        """`text`'s query vector: no work when it was just searched for as it is."""
        return self._vectors.get(text)

    def _hits(self, snapshot: Snapshot, scored: list[tuple[str, float]]) -> list[Hit]:
        """(id, score) pairs as hits. Chunks ingested since the snapshot are read from the index:
        a document being replaced must never go missing from the answers."""
        missing = [i for i, _ in scored if i not in snapshot.chunks]
        fetched = self.index.chunks(missing) if missing else {}
        return [Hit(i, *(snapshot.chunks.get(i) or fetched[i]), score=score)
                for i, score in scored if i in snapshot.chunks or i in fetched]

    def relevant(self, question: str, hits: list[Hit], history: list[Turn] = ()) -> list[Hit]:
        """The hits that may answer the question (asked after `history`, as for `search`); none
        when it is not answerable: nothing scores above the threshold, or the question is about
        something the documents never mention."""
        passages = [hit for hit in hits if hit.score >= self.threshold]
        if passages and self._about_unknown_things(question, history):
            return []
        return passages

    def _query(self, snapshot: Snapshot, question: str, history: list[Turn]) -> tuple[str, bool]:
        """The text to search for, typo-corrected when it is in the documents' language, and
        whether it is (only then does the lexical index apply)."""
        text = search_text(question, list(history))
        if not self._in_documents_language(text):
            return text, False
        return snapshot.lexical.correct(text), True

    def _about_unknown_things(self, question: str, history: list[Turn]) -> bool:
        """Whether the question is about something the documents never mention ("mi perro",
        "tamales"). Its best score does not tell: the rest of its words still match some page well.
        What tells is how much of its meaning rests on the words the documents never use. Without
        them, "hay seguro para mi perro?" means something else (cosine to the original ~.95), while
        "cada cuánto me toca la mamografía?" means the same (~.99)."""
        checks = self._meaning_checks(self.snapshot(), question, history)
        return any(cosine(self._vectors.get(text), self._vectors.get(covered)) < least
                   for text, covered, least in checks)

    def _meaning_checks(self, snapshot: Snapshot, question: str, history: list[Turn]) -> list[tuple[str, str, float]]:
        """(text, text without the words the documents never use, least cosine between them for the
        question to be about the documents), for each reading of the question that has such words.

        A follow-up is searched together with the previous message, whose words dilute the new
        one's ("me pasas una receta de tamales?" after a question about prices), so it is also
        judged alone, with a margin: a short text loses more meaning per word removed."""
        if not self.covered_meaning_threshold:
            return []
        text, in_documents_language = self._query(snapshot, question, history)
        readings = [(text, self.covered_meaning_threshold)] if in_documents_language else []
        if text != question and self._in_documents_language(question):
            readings.append((snapshot.lexical.correct(question), self.covered_meaning_threshold - FOLLOW_UP_MARGIN))
        return [(text, covered, least) for text, least in readings
                if (covered := self._without_unknown_words(snapshot, text)) != text]

    @staticmethod
    def _without_unknown_words(snapshot: Snapshot, text: str) -> str:
        """`text` without the words the documents never use, but for a name of the customer's own
        situation ("me cambio de Vodafone": the question is still about changing provider)."""
        unknown = set(snapshot.lexical.unknown_terms(text)) - set(names_of_situation(text))
        return WORD.sub(lambda word: "" if plain(word.group(0)) in unknown else word.group(0), text)

    def warm_up(self) -> None:
        """Load the models and read the snapshot now, not on the first customer's question."""
        load_engines = getattr(self.embedder, "warm_up", None)  # a local embedder's
        if load_engines:
            load_engines()
        self._vectors.get("hola")
        self._in_documents_language("hola")
        self.snapshot()

    def lexical(self) -> LexicalIndex:
        return self.snapshot().lexical

    def page(self, source: str) -> list[Hit]:
        """Every chunk of one document, in reading order."""
        return self.snapshot().pages.get(source, [])

    def source_of_link(self, path: str) -> str | None:
        """The document a site-relative link points to ("/es/glossary/health-plan-categories/" is
        "…/2013-06-05-health-plan-categories.md"), if exactly one file name ends in its last part."""
        slug = path.rstrip("/").rsplit("/", 1)[-1]
        if not slug:
            return None
        found = [source for source in self.snapshot().pages
                 if re.search(rf"(^|[-_/]){re.escape(slug)}\.\w+$", source)]
        return found[0] if len(found) == 1 else None

    def snapshot(self) -> Snapshot:
        """The in-memory view of the documents, re-read when an ingest (in any process) changed them."""
        with self._lock:
            if self._snapshot is None or time.monotonic() - self._checked_at > REFRESH_SECONDS:
                if self._snapshot is None or self.index.revision() != self._snapshot.revision:
                    self._snapshot = Snapshot.read(self.index, self.language)
                self._checked_at = time.monotonic()
            return self._snapshot

    def _in_documents_language(self, text: str) -> bool:
        return detect_language(text, self.language) == self.language

