"""Answer: question + recent turns → a grounded reply, or an honest "I don't know".

This is the whole assistant. It knows nothing about HTTP, Twilio or WhatsApp formatting.
With an LLM configured it writes the reply from the retrieved passages; without one (offline
mode) it answers with the most relevant passage text itself.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from rag.language import detect_language, phrase, small_talk
from rag.prompt import build_messages
from rag.retrieve import Retriever, Turn
from rag.store import Hit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answer:
    text: str
    language: str
    outcome: str  # "answered", "small_talk", "unknown" (nothing relevant found) or "error"
    sources: list[str] = field(default_factory=list)  # best first
    retrieved: list[Hit] = field(default_factory=list, repr=False)  # top-k considered, best first


class Assistant:
    def __init__(self, retriever: Retriever, chat_model=None, company: str = "", fallback_language: str = "es"):
        self.retriever = retriever
        self.chat_model = chat_model
        self.company = company
        self.fallback_language = fallback_language

    def answer(self, question: str, history: list[Turn] = ()) -> Answer:
        history = list(history)
        language = self._language(question, history)
        kind = small_talk(question)
        if kind:
            return Answer(phrase(kind, language, company=self.company), language, "small_talk")
        try:
            retrieved = self.retriever.search(question, history)
            passages = self.retriever.relevant(retrieved)
            if not passages:
                return Answer(phrase("dont_know", language), language, "unknown", retrieved=retrieved)
            text = self._generate(question, history, passages, language)
        except Exception:
            log.exception("answering failed")
            return Answer(phrase("error", language), language, "error")
        sources = list(dict.fromkeys(p.source for p in passages))
        return Answer(text, language, "answered", sources, retrieved)

    def _language(self, question: str, history: list[Turn]) -> str:
        """The customer's language; a too-short message keeps the language of their earlier ones."""
        earlier = " ".join(t.text for t in history if t.role == "user")
        fallback = detect_language(earlier, self.fallback_language) if earlier else self.fallback_language
        return detect_language(question, fallback)

    def _generate(self, question: str, history: list[Turn], passages: list[Hit], language: str) -> str:
        if self.chat_model is None:
            return f"{phrase('found', language)}\n\n{passages[0].text}"
        reply = self.chat_model.invoke(build_messages(self.company, passages, history, question))
        return str(reply.content).strip() or phrase("dont_know", language)


def make_chat_model(settings):
    """An OpenAI (or OpenAI-compatible) chat model, or None for offline mode."""
    if not settings.uses_llm:
        return None
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        model=settings.openai_model,
        api_key=settings.openai_api_key.get_secret_value(),
        base_url=settings.openai_base_url or None,
        timeout=settings.openai_timeout_seconds,
        max_retries=1,
        temperature=0.2,
    )


def build_assistant(settings) -> Assistant:
    """Wire the pipeline from settings: embedder → index → retriever → (model) → assistant."""
    from rag.embed import make_embedder
    from rag.store import open_index

    embedder = make_embedder(settings)
    index = open_index(settings, embedder.embedder_id)
    retriever = Retriever(index, embedder, settings.retrieval_k, settings.relevance_threshold)
    return Assistant(retriever, make_chat_model(settings), settings.company_name)
