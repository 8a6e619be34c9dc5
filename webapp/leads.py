"""Leads: the contact details a customer gives in a conversation (a name, an e-mail address, a
phone number), noted for the business to follow up (`webapp.db.leads`), and their CSV export.

Only what the customer writes counts: "me llamo Ana García", "mi correo es ana@example.com",
"llamadme al 612 345 678". WhatsApp's profile name and number are kept beside it, as context.
"""
from __future__ import annotations

import re
from collections.abc import Iterator

from rag.language import plain
from webapp.csv_export import csv_lines

EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w-])")
# A run of digits with the separators people type; 9 to 15 digits make a phone number.
PHONE = re.compile(r"(?<![\w+])\+?\d[\d .()-]{7,20}\d(?![\w])")
MIN_PHONE_DIGITS, MAX_PHONE_DIGITS = 9, 15
# "me llamo ana", "my name is Ana": the words after it are the name, in any case.
NAMED = re.compile(r"\b(?:me llamo|mi nombre es|my name is|je m'appelle|meu nome é|meu nome e|me chamo)\s+"
                   r"([^\W\d_]+(?:[ '-][^\W\d_]+){0,3})", re.IGNORECASE)
# "soy Ana", "I'm Ana": only capitalised words ("soy cliente" names no one).
INTRODUCED = re.compile(r"\b(?:[Ss]oy|I'm|I am|[Ss]ou)\s+"
                        r"([A-ZÁÉÍÓÚÑÇ][^\W\d_]+(?: [A-ZÁÉÍÓÚÑÇ][^\W\d_]+){0,2})")
# Where a name stops: "me llamo Ana y quiero…", "my name is Ana and…".
NOT_A_NAME = {"y", "e", "and", "et", "o", "or", "ou", "pero", "but", "mais", "quiero", "quisiera", "necesito",
              "tengo", "vivo", "soy", "want", "need", "have", "live", "from", "please", "por", "para", "con", "que",
              "with", "gracias", "thanks", "hola", "hello", "cliente", "client", "customer", "de", "from", "aqui"}
# What is left of "mi correo es ana@example.com y mi móvil 612 345 678" once the details are out.
FILLER = {"mi", "me", "mis", "es", "son", "y", "e", "o", "el", "la", "de", "del", "al", "a", "correo", "email", "mail",
          "electronico", "telefono", "movil", "numero", "whatsapp", "contacto", "my", "is", "and", "or", "the", "phone",
          "number", "mobile", "meu", "minha", "meus", "mon", "ma", "est", "et", "hola", "hi", "gracias", "thanks",
          "llamarme", "llamadme", "llamame", "call", "me", "at", "en", "por", "favor", "please", "aqui", "here"}
CSV_COLUMNS = ("conversation_id", "wa_id", "name", "email", "phone", "profile_name", "source", "created_at",
               "updated_at")


def contact_details(text: str) -> dict:
    """The name, e-mail address and phone number `text` gives, those it gives."""
    found = {}
    if email := EMAIL.search(text):
        found["email"] = email.group(0).lower()
    for candidate in PHONE.finditer(EMAIL.sub(" ", text)):
        digits = re.sub(r"\D", "", candidate.group(0))
        if MIN_PHONE_DIGITS <= len(digits) <= MAX_PHONE_DIGITS:
            found["phone"] = ("+" if candidate.group(0).startswith("+") else "") + digits
            break
    if name := _name(text):
        found["name"] = name
    return found


def only_contact_details(text: str) -> bool:
    """The message gives contact details and nothing else to answer ("me llamo Ana, mi correo es
    ana@example.com"): no question, no word beyond the details and the words that carry them."""
    if "?" in text or not contact_details(text):
        return False
    rest = PHONE.sub(" ", EMAIL.sub(" ", text))
    named = _named(rest)
    if named:
        rest = rest[: named[0]] + " " + rest[named[1]:]
    return all(word in FILLER for word in re.findall(r"[^\W\d_]+", plain(rest)))


def _name(text: str) -> str | None:
    named = _named(text)
    if named is None:
        return None
    name = named[2]
    return name if any(c.isupper() for c in name) else name.title()


def _named(text: str) -> tuple[int, int, str] | None:
    """Where "me llamo Ana García" is in `text` (start, end) and the name, which ends where a word
    that is not a name begins ("me llamo Ana y quiero…")."""
    match = NAMED.search(text) or INTRODUCED.search(text)
    if match is None:
        return None
    words = []
    for word in match.group(1).split():
        if word.lower() in NOT_A_NAME:
            break
        words.append(word)
    if not words:
        return None
    end = match.start(1) + len(" ".join(words))
    return match.start(), end, " ".join(words)


def leads_csv(leads) -> Iterator[str]:
    """`leads` (documents) as CSV, the header first, a line at a time (for a streamed response)."""
    return csv_lines(CSV_COLUMNS, ({**lead, "conversation_id": lead["_id"]} for lead in leads))
