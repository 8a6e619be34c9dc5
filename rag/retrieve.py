"""Retrieve: the top-k chunks for a question, above a relevance threshold."""
from __future__ import annotations

from dataclasses import dataclass

from langchain_core.embeddings import Embeddings

from rag.store import Hit, KnowledgeIndex

FOLLOW_UP_MAX_WORDS = 8
CANDIDATES_PER_RESULT = 4


@dataclass(frozen=True)
class Turn:
    role: str  # "user" or "assistant"
    text: str


def search_text(question: str, history: list[Turn]) -> str:
    """What to search for. A short message after earlier ones ("y eso cuánto cuesta?") is usually
    a follow-up, so it is searched together with the customer's previous message."""
    earlier = [t.text for t in history if t.role == "user"]
    if earlier and len(question.split()) <= FOLLOW_UP_MAX_WORDS:
        return f"{earlier[-1]}\n{question}"
    return question


class Retriever:
    def __init__(self, index: KnowledgeIndex, embedder: Embeddings, k: int, threshold: float):
        self.index = index
        self.embedder = embedder
        self.k = k
        self.threshold = threshold

    def search(self, question: str, history: list[Turn] = ()) -> list[Hit]:
        """The best chunk of each of the k best documents, best first, relevant or not. Several
        chunks of one page would crowd out other pages that may hold the answer."""
        vector = self.embedder.embed_query(search_text(question, list(history)))
        best_per_source: dict[str, Hit] = {}
        for hit in self.index.query(vector, self.k * CANDIDATES_PER_RESULT):
            best_per_source.setdefault(hit.source, hit)
        return list(best_per_source.values())[: self.k]

    def relevant(self, hits: list[Hit]) -> list[Hit]:
        return [hit for hit in hits if hit.score >= self.threshold]
