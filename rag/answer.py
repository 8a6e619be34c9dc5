"""Answer: question + recent turns → a grounded reply, or an honest "I don't know".

This is the whole assistant. It knows nothing about HTTP, Twilio or WhatsApp formatting.
With an LLM configured it rewrites follow-ups into standalone questions and writes the reply from
the retrieved passages; without one (offline mode) it answers with the passage's most relevant
sentences.
"""
from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field

from rag.language import detect_language, phrase, small_talk
from rag.prompt import build_messages, build_rewrite_messages, system_prompt
from rag.retrieve import Retriever, Turn, search_text
from rag.store import Hit

log = logging.getLogger(__name__)

ANSWER_SENTENCES = 3
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[¿¡\"'(\w])")
TABLE_RULE = re.compile(r"^\|?[\s:|-]+\|?$")


@dataclass(frozen=True)
class Answer:
    text: str
    language: str
    # "answered", "small_talk", "unknown" (nothing relevant found) or "error"; the worker's own:
    # "unreadable" (no text) and "handoff" (to a person)
    outcome: str
    sources: list[str] = field(default_factory=list)  # best first
    retrieved: list[Hit] = field(default_factory=list, repr=False)  # top-k considered, best first
    retrieval_seconds: float = 0.0  # searching and judging relevance, without rewriting or writing


@dataclass(frozen=True)
class Persona:
    """Who the assistant speaks for and how, as the business set it (webapp.bot_config)."""

    company: str
    rules: str = ""  # instead of the default rules (rag.prompt.RULES); "" keeps them
    tone: str = ""
    model: str = ""  # the chat model to write with; "" the one configured
    temperature: float | None = None


class Assistant:
    def __init__(self, retriever: Retriever, chat_model=None, company: str = "", fallback_language: str = "es",
                 cite_sources: bool = False):
        self.retriever = retriever
        self.chat_model = chat_model
        self.persona = Persona(company)
        self.fallback_language = fallback_language
        self.cite_sources = cite_sources

    def answer(self, question: str, history: list[Turn] = (), persona: Persona | None = None) -> Answer:
        history = list(history)
        persona = persona or self.persona
        language = self.language(question, history)
        kind = small_talk(question)
        if kind:
            return Answer(phrase(kind, language, company=persona.company), language, "small_talk")
        model = self._model(persona)
        try:
            standalone, context = self._standalone(model, question, history)
            started = time.perf_counter()
            retrieved = self.retriever.search(standalone, context)
            passages = self.retriever.relevant(standalone, retrieved, context)
            retrieval_seconds = time.perf_counter() - started
            if not passages:
                return Answer(phrase("dont_know", language), language, "unknown", retrieved=retrieved,
                              retrieval_seconds=retrieval_seconds)
            text = self._generate(model, persona, question, standalone, history, passages, language)
        except Exception:
            log.exception("answering failed")
            return Answer(phrase("error", language), language, "error")
        if self.cite_sources:
            text += "\n\n" + phrase("source", language, title=_title(passages[0]))
        sources = list(dict.fromkeys(p.source for p in passages))
        return Answer(text, language, "answered", sources, retrieved, retrieval_seconds)

    def _model(self, persona: Persona):
        """The chat model as the persona wants it (model and temperature), or None offline."""
        if self.chat_model is None:
            return None
        overrides = {"model": persona.model} if persona.model else {}
        if persona.temperature is not None:
            overrides["temperature"] = persona.temperature
        return self.chat_model.bind(**overrides) if overrides else self.chat_model

    def _standalone(self, model, question: str, history: list[Turn]) -> tuple[str, list[Turn]]:
        """The question to search for, and the turns retrieval should still join to it. With an
        LLM a follow-up is rewritten from the conversation; offline (or if the rewrite fails) the
        retriever joins it to the previous message instead (see `search_text`)."""
        if model is None or not any(turn.role == "user" for turn in history):
            return question, history
        try:
            rewritten = str(model.invoke(build_rewrite_messages(history, question)).content).strip()
        except Exception:
            log.warning("follow-up rewrite failed; searching with the previous message joined", exc_info=True)
            return question, history
        return (rewritten, []) if rewritten else (question, history)

    def language(self, question: str, history: list[Turn]) -> str:
        """The customer's language; a too-short message keeps the language of their earlier ones."""
        earlier = " ".join(t.text for t in history if t.role == "user")
        fallback = detect_language(earlier, self.fallback_language) if earlier else self.fallback_language
        return detect_language(question, fallback)

    def _generate(self, model, persona: Persona, question: str, standalone: str, history: list[Turn],
                  passages: list[Hit], language: str) -> str:
        if model is None:
            best = passages[0]
            context = {best.metadata.get("title", ""), *best.metadata.get("headings", "").split(" > ")}
            asked = search_text(standalone, history)  # offline, a follow-up also means the message before it
            sentences = key_sentences(best.text, asked, self.retriever.lexical().terms, skip=context)
            return f"{phrase('found', language)}\n\n{sentences}"
        system = system_prompt(persona.company, persona.rules, persona.tone)
        reply = model.invoke(build_messages(system, passages, history, question))
        return str(reply.content).strip() or phrase("dont_know", language)


def key_sentences(text: str, question: str, terms, limit: int = ANSWER_SENTENCES, skip: set[str] = frozenset()) -> str:
    """The `limit` sentences of `text` sharing the most (stemmed) words with the question, in
    their original order (one line per source line); the opening ones when none shares any.
    Lines in `skip` (the title and headings a chunk is prefixed with) are context, not answers."""
    lines = [line for line in _readable_lines(text) if line not in skip]
    sentences = [(line_no, sentence) for line_no, line in enumerate(lines)
                 for sentence in SENTENCE_END.split(line) if sentence.strip()]
    wanted = set(terms(question))
    overlap = [len(wanted & set(terms(sentence))) for _, sentence in sentences]
    chosen = sorted(sorted(range(len(sentences)), key=lambda i: (-overlap[i], i))[:limit])
    by_line: dict[int, list[str]] = {}
    for i in chosen:
        by_line.setdefault(sentences[i][0], []).append(sentences[i][1].strip())
    return "\n".join(" ".join(parts) for parts in by_line.values())


def _readable_lines(text: str) -> list[str]:
    """Text lines without Markdown headings and table header rows (context, not content), and
    with table rows as plain "cell, cell, cell" lines."""
    lines: list[str] = []
    last_was_row = False
    for line in text.splitlines():
        line = line.strip()
        if TABLE_RULE.match(line) and last_was_row:
            lines.pop()  # the row above a table's rule is its header
        if not line or line.startswith("#") or TABLE_RULE.match(line):
            last_was_row = False
            continue
        last_was_row = line.startswith("|")
        if last_was_row:
            line = ", ".join(cell.strip() for cell in line.strip("|").split("|") if cell.strip())
        lines.append(line)
    return lines


def _title(hit: Hit) -> str:
    return str(hit.metadata.get("title") or hit.source)


def make_chat_model(settings, callbacks=()):
    """An OpenAI (or OpenAI-compatible) chat model, or None for offline mode. `callbacks`:
    LangChain callback handlers told of every call (the worker's metrics)."""
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
        callbacks=list(callbacks) or None,
    )


def make_retriever(settings, embedder=None, k: int | None = None) -> Retriever:
    """embedder → index → retriever, as configured (reusing `embedder` if given: it is costly to load)."""
    from rag.embed import make_embedder
    from rag.store import open_index

    embedder = embedder or make_embedder(settings)
    return Retriever(
        open_index(settings, embedder.embedder_id), embedder, k or settings.retrieval_k,
        settings.relevance_threshold, settings.covered_meaning_threshold, settings.knowledge_language,
    )


def build_assistant(settings, retriever: Retriever | None = None, callbacks=()) -> Assistant:
    """Wire the pipeline from settings: retriever → (model) → assistant."""
    return Assistant(
        retriever or make_retriever(settings), make_chat_model(settings, callbacks), settings.company_name,
        fallback_language=settings.knowledge_language, cite_sources=settings.cite_sources,
    )
