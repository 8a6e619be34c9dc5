"""Answer: question + recent turns → a grounded reply, or an honest "I don't know".

This is the whole assistant. It knows nothing about HTTP, Twilio or WhatsApp formatting.
With an LLM configured it rewrites follow-ups into standalone questions and writes the reply from
the retrieved passages; without one (offline mode) it quotes the part of the best page that
answers the question (`rag.extract`).
"""
from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from rag.extract import (DECISIVE_FACTS, SITUATION, Unit, answer_kind, choose, holds_fact, names_asked_about,
                          page_units, quote)
from rag.language import detect_language, phrase, plain, small_talk
from rag.prompt import build_messages, build_rewrite_messages, system_prompt
from rag.retrieve import Retriever, Turn, search_text
from rag.store import Hit

log = logging.getLogger(__name__)

# Kinds of answer refused when neither the passages nor the best page state one (an amount for
# "¿cuánto cuesta…?", a percentage, a clock time for "¿a qué hora…?"); dates, durations and numbers
# are too often written in words to tell (measured, eval/README.md)
REFUSED_WITHOUT_FACT = {"amount", "percentage", "time"}
# Kinds of answer that are figures: one asked for a year the documents never name ("la multa en el
# 2016") is refused; a year that only tells the customer's situation ("mi plan es de antes del
# 2010, ¿a dónde llamo?") is in a question of another kind (measured, eval/README.md)
FIGURES = {"amount", "percentage", "number", "date", "duration"}
THIN_PAGE_WORDS = 4  # a page that says less ("No.") only answers the question its title asks
LINK_TO_PAGE = re.compile(r"\]\((/[^)\s]+)\)")  # a Markdown link to another page of the same site
YEAR = re.compile(r"\b(19|20)\d\d\b")
# A figure a question names ("¿tiene 5 años de garantía?"), on plain text, and each way of writing its
# unit (so "600 megas" is found as "600 Mb"); one that follows words about the customer's own
# situation ("tengo 28 años, ¿puedo…?") is not asked about
FIGURE_UNITS = {
    "€": "€", "euros": "€", "euro": "€", "$": "$", "dolares": "$", "dollars": "$", "%": "%", "por ciento": "%",
    "anos": "year", "ano": "year", "years": "year", "meses": "month", "mes": "month", "months": "month",
    "dias": "day", "dia": "day", "days": "day", "semanas": "week", "weeks": "week", "horas": "hour",
    "hours": "hour", "gb": "gb", "gigas": "gb", "mb": "mb", "megas": "mb",
}
PRICES = {"€", "$"}
FIGURE = (r"(?P<number>\d+(?:[.,]\d+)?) ?(?P<unit>"
          + "|".join(map(re.escape, sorted(FIGURE_UNITS, key=len, reverse=True))) + r")(?!\w)")
CONFIRMED_FIGURE = re.compile(r"(?<!\S)(?P<before>(?:\S+ ){0,2})" + FIGURE)


@dataclass(frozen=True)
class Answer:
    text: str
    language: str
    # "answered", "fallback" (answered offline: the LLM failed), "small_talk", "unknown" (nothing
    # relevant found) or "error"; the worker's own:
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
                 cite_sources: bool = False, prompt_max_tokens: int = 0):
        self.retriever = retriever
        self.prompt_max_tokens = prompt_max_tokens
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
            if passages and not self._may_hold_answer(question, passages):
                passages = []
            retrieval_seconds = time.perf_counter() - started
            if not passages:
                return Answer(phrase("dont_know", language), language, "unknown", retrieved=retrieved,
                              retrieval_seconds=retrieval_seconds)
            text, outcome = self._generate(model, persona, question, standalone, history, passages, language)
        except Exception:
            log.exception("answering failed")
            return Answer(phrase("error", language), language, "error")
        if self.cite_sources:
            text += "\n\n" + phrase("source", language, title=_title(passages[0]))
        sources = list(dict.fromkeys(p.source for p in passages))
        return Answer(text, language, outcome, sources, retrieved, retrieval_seconds)

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
            asked = build_rewrite_messages(history, question, self.prompt_max_tokens)
            rewritten = str(model.invoke(asked).content).strip()
        except Exception:
            log.warning("follow-up rewrite failed; searching with the previous message joined", exc_info=True)
            return question, history
        return (rewritten, []) if rewritten else (question, history)

    def language(self, question: str, history: list[Turn]) -> str:
        """The customer's language; a too-short message keeps the language of their earlier ones."""
        earlier = " ".join(t.text for t in history if t.role == "user")
        fallback = detect_language(earlier, self.fallback_language) if earlier else self.fallback_language
        return detect_language(question, fallback)

    def _may_hold_answer(self, question: str, passages: list[Hit]) -> bool:
        """False when the documents cover the topic but not the detail asked for: an amount for
        "¿cuánto cuesta…?" or a clock time for "¿a qué hora…?" that neither the passages nor the
        best page state, or a year a figure is asked for ("la multa en el 2016") or a figure the
        question asks to confirm ("¿tiene 5 años de garantía?") that no page found states (for a
        price, any amount: quoting the right one answers "¿cuesta 30 €?"), or a name the documents
        never use ("el teléfono de Aetna"), unless it tells the customer's situation."""
        kind = answer_kind(question)
        lexical = self.retriever.lexical()
        asked = plain(lexical.correct(question))
        unknown = set(lexical.unknown_terms(asked))
        if unknown.intersection(names_asked_about(asked)):
            return False
        best_page = [hit.text for hit in passages] + [chunk.text for chunk in self.retriever.page(passages[0].source)]
        # a figure the customer names may be about another page found (two questions in one message)
        others = dict.fromkeys(hit.source for hit in passages if hit.source != passages[0].source)
        found = best_page + [chunk.text for source in others for chunk in self.retriever.page(source)]
        said = " ".join(map(plain, found))  # each text once: plain remembers them
        stated = {(figure["number"], FIGURE_UNITS[figure["unit"]]) for figure in re.finditer(FIGURE, said)}
        states_amount = any(holds_fact(text, "amount") for text in found)
        for figure in CONFIRMED_FIGURE.finditer(plain(question)):
            unit = FIGURE_UNITS[figure["unit"]]
            if not ((figure["number"], unit) in stated or SITUATION.search(figure["before"])
                    or unit in PRICES and states_amount):
                return False
        if kind in FIGURES and any(year.group(0) not in said for year in YEAR.finditer(question)):
            return False
        return kind not in REFUSED_WITHOUT_FACT or any(holds_fact(text, kind) for text in best_page)

    def _quoted(self, question: str, standalone: str, history: list[Turn], passages: list[Hit], language: str) -> str:
        """The offline reply: the part of the best page that answers the question (`rag.extract`),
        framed in the customer's language when it is not the documents'."""
        lexical = self.retriever.lexical()
        asked = search_text(standalone, history)  # offline, a follow-up also means the message before it
        kind = answer_kind(lexical.correct(question)) or answer_kind(asked)
        best, page, units = self._page_to_quote(passages, kind)
        earlier = asked[: -len(standalone)] if asked != standalone else ""
        chosen = choose(units, lexical.correct(standalone), lexical.terms, kind,
                        earlier=lexical.correct(earlier), retrieved=best.text, title=best.metadata.get("title", ""))
        body = quote(chosen) or best.text
        if language == self.retriever.language:
            return body
        return f"{phrase('found', language)}\n\n{body}"

    def _page_to_quote(self, passages: list[Hit], kind: str) -> tuple[Hit, list[Hit], list[Unit]]:
        """The passage to quote, its page and the page's units. The best passage's page, but the first
        page found after it that states the figure asked for ("¿de cuánto es?") when it states none,
        or that says more than "No." (such a page only answers its own title's question). A page that
        only sends the reader to another counts as that other page."""
        def states_it(found: tuple[Hit, list[Hit], list[Unit]]) -> bool:
            return any(holds_fact(chunk.text, kind) for chunk in found[1])

        candidates = self._pages_found(passages)
        best = first = next(candidates)
        while best is not None and len(" ".join(unit.text for unit in best[2]).split()) < THIN_PAGE_WORDS:
            best = next(candidates, None)
        best = best or first
        if kind in DECISIVE_FACTS and not states_it(best):
            return next(filter(states_it, candidates), best)
        return best

    def _pages_found(self, passages: list[Hit]) -> Iterator[tuple[Hit, list[Hit], list[Unit]]]:
        """(passage, its page, the page's units) for each page found, best first, read as needed."""
        for hit in passages:  # one per page (`Retriever.search`)
            page = self.retriever.page(hit.source) or [hit]
            units = _units(page)
            target = self._sent_to(page, units)
            yield (target[0], target, _units(target)) if target else (hit, page, units)

    def _sent_to(self, page: list[Hit], units: list[Unit]) -> list[Hit]:
        """The page this one only sends its reader to ("Vea [Categorías de planes médicos](/es/glossary/
        health-plan-categories)."), when it is in the documents; [] for a page that says more."""
        links = LINK_TO_PAGE.findall(page[0].text) if len(units) == 1 and len(page) == 1 else []
        source = self.retriever.source_of_link(links[0]) if len(links) == 1 else None
        return self.retriever.page(source) if source and source != page[0].source else []

    def _generate(self, model, persona: Persona, question: str, standalone: str, history: list[Turn],
                  passages: list[Hit], language: str) -> tuple[str, str]:
        """The reply and its outcome: the LLM's ("answered"), or offline the quote from the best
        page ("answered"; "fallback" when the LLM failed or timed out: the customer still gets
        the documents' answer, not an apology)."""
        if model is None:
            return self._quoted(question, standalone, history, passages, language), "answered"
        system = system_prompt(persona.company, persona.rules, persona.tone)
        try:
            reply = model.invoke(build_messages(system, passages, history, question, self.prompt_max_tokens))
        except Exception as exc:  # down, timed out, refused: what it would have written from is here
            log.warning("the LLM failed (%s); answering offline", type(exc).__name__)
            return self._quoted(question, standalone, history, passages, language), "fallback"
        return str(reply.content).strip() or phrase("dont_know", language), "answered"


def _title(hit: Hit) -> str:
    return str(hit.metadata.get("title") or hit.source)


def _units(page: list[Hit]):
    """A page's quotable units (`rag.extract.page_units`), without its title and headings."""
    context = {page[0].metadata.get("title", "")} | {
        heading for hit in page for heading in hit.metadata.get("headings", "").split(" > ") if heading}
    return page_units([(hit.text, _last_heading(hit)) for hit in page], context)


def _last_heading(hit: Hit) -> str:
    return hit.metadata.get("headings", "").split(" > ")[-1]


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
        prompt_max_tokens=settings.openai_max_prompt_tokens,
    )
