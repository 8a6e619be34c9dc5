"""Per-answer feedback: after every FEEDBACK_EVERY_N_ANSWERS-th answer of a conversation the bot
asks "¿Te sirvió esta respuesta?" under it, with 👍 / 👎 buttons. A tap, or a 👍 / 👎 typed right
after the question, is stored on the answer once (the first rating stands); a 👎 offers a person.

A button's id names the answer it rates (by the first customer message that answer replied to),
so a tap on an old question, after the conversation moved on, still rates the answer it was under.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from bson import ObjectId

from rag.language import phrase

RATED_OUTCOMES = ("answered", "fallback")  # answers worth asking about: the bot said what it found
THUMBS = {"up": "👍", "down": "👎"}
BUTTON_ID = re.compile(r"feedback:(up|down):([0-9a-f]{24})\Z")
# A typed thumb, in any skin tone, with or without the emoji variation selector
TYPED = {rating: re.compile(rf"^(?:{thumb}[\U0001F3FB-\U0001F3FF]?\uFE0F?\s*)+$") for rating, thumb in THUMBS.items()}


@dataclass(frozen=True)
class Rating:
    answer_key: str  # the `dedup_key` of the rated answer's first part
    value: str  # "up" or "down"
    message_id: ObjectId  # the customer's message that rated it


def answer_key(first_answered: ObjectId) -> str:
    """The `dedup_key` of the first part of the answer to `first_answered` (`Messages.queue_reply`)."""
    return f"reply:{first_answered}:answer:0"


def asks_now(every_n: int, answers_so_far: int) -> bool:
    """Whether the answer just given, the conversation's `answers_so_far`-th, is asked about."""
    return answers_so_far % every_n == 0


def question_part(language: str, first_answered: ObjectId) -> tuple[str, list[dict]]:
    """The part that asks, and its buttons."""
    buttons = [{"id": f"feedback:{value}:{first_answered}", "title": thumb} for value, thumb in THUMBS.items()]
    return phrase("feedback_ask", language), buttons


def rating_in(message: dict, last_answer: dict | None) -> Rating | None:
    """The rating `message` gives: a tap on a feedback button (its id decides), or a bare 👍 / 👎
    typed when the bot's last answer (`last_answer`, its first part) asked for one."""
    context = message.get("context") or {}
    for tapped in (context.get("button_id"), context.get("button_payload")):
        found = BUTTON_ID.match(tapped or "")
        if found:
            return Rating(answer_key(ObjectId(found[2])), found[1], message["_id"])
    if last_answer is None or not last_answer.get("feedback_asked"):
        return None
    typed = next((value for value, pattern in TYPED.items() if pattern.match(message["body"].strip())), None)
    return Rating(last_answer["dedup_key"], typed, message["_id"]) if typed else None
