"""Extract: the offline answer, quoted from the best page, the part that answers the question.

Without an LLM the reply is the page's own words, so which words matters: the fact asked for
first, in few lines. The page is read as quotable units (a sentence; a sentence ending in ":"
with the list under it; a table row with its header), the question as an expected kind of answer
(an amount, a date, a duration, a number, steps…), and a unit is chosen for sharing the question's
words and holding that kind of fact, in the section whose heading matches the question. Sentences
about the page itself ("En esta página te explicamos…", "Más información…") and bare links are
never quoted.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from rag.language import plain

MAX_SENTENCES = 3
SHORT_SENTENCE_WORDS = 3
MAX_LIST_ITEMS = 8
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[¿¡\"'(\w])")
TABLE_RULE = re.compile(r"^\|?[\s:|-]+\|?$")
LIST_ITEM = re.compile(r"^\s*(?:[-*•]|\d{1,2}[.)])\s+")
NUMBERED_ITEM = re.compile(r"^\s*\d{1,2}[.)]\s+")
HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
MARKDOWN_LINK = re.compile(r"\[([^\]]*)\]\(([^)\s]*)[^)]*\)")
WEB_ADDRESS = re.compile(r"https?://")
# Sentences about the page or the site, not about the question (matched on plain text)
ABOUT_THE_PAGE = re.compile(
    r"^(en esta pagina|esta pagina|en este articulo|aqui (te )?(explicamos|contamos|encontraras|encontrara|puedes ver)|"
    r"a continuacion|"
    r"(obten(ga)?|obtener|encuentre|encuentra|lea|lee|vea|ve|consulte|consulta|visite|visita) mas informacion|"
    r"mas informacion|para (obtener )?mas informacion|informacion adicional|ver tambien|"
    r"(learn|find out|read) more|more information|on this page|this page)\b"
    r"|\b(para|obtenga|obtener|obten) mas informacion\b|\bconsulta la pagina\b")
ANNOUNCES_LIST = re.compile(r"(:$|\b(estos|estas|los siguientes|las siguientes) (pasos|opciones|requisitos|documentos|"
                            r"formas|maneras|medidas)\b|\bthe following\b|\bthese steps\b)")
BARE_LINK = re.compile(r"^(https?://\S+|www\.\S+)$")

SHORTHAND = {"q": "que", "k": "que", "xq": "porque", "pq": "porque", "cdo": "cuando", "dnd": "donde"}
CHAT_SHORTHAND = re.compile(r"\b(" + "|".join(SHORTHAND) + r")\b")
# What kind of fact a question asks for, from its plain (lower-case, accent-free) text, first match wins
ANSWER_KINDS: list[tuple[str, re.Pattern]] = [
    ("definition", re.compile(r"^(que|q) (es|son|significa|quiere decir)\b|^what (is|are)\b|\bwhat does\b.*\bmean\b|"
                              r"^(define|definicion)\b")),
    ("duration", re.compile(r"\bcuanto (tiempo|tarda|tardan|demora|dura|duran)\b|"
                            r"\bcuantos (dias|meses|anos|semanas|horas)\b|"
                            r"\bhow long\b|\bplazo\b")),
    ("percentage", re.compile(r"\bporcentaje\b|\bpor ciento\b|\bpercent(age)?\b")),
    ("amount", re.compile(r"\bcuanto (me |te |le |nos |les )?(cuesta|cuestan|vale|valen|pago|pagaria|pagare|"
                          r"hay que pagar|tengo que pagar|toca pagar|tocaria pagar|cobran|cobra|cobrarian|sale|"
                          r"saldria|costaria|costara|costaran|valdra|es|seria|sera|va a ser|(tendria|tendre|tendriamos) que pagar)\b|\bde cuanto (es|seria|sera|va a ser)\b|"
                          r"\bcuanto(?=(?: \S+){0,5} (pagar|pago|pagaria|pagare|pagamos)\b)|\bprecio|\bcosto\b|\bcoste\b|\blimite de ingresos\b|\bhasta cuanto\b|"
                          r"\bhow much\b|\bcost\b|\bprice\b|\bfee\b|\bque tanto\b|\bpenalizacion\b")),
    ("time", re.compile(r"\ba que hora\b|\bhorario\b|\bque horas?\b|\bwhat time\b|\bopening hours\b|\bhours\b")),
    ("date", re.compile(r"\bcuando\b|\bque (dia|fecha|mes|ano)\b|\bhasta que (dia|fecha)\b|\bfecha\b|\bwhen\b|"
                        r"\bwhat (date|day|month)\b|\bdeadline\b")),
    ("number", re.compile(r"\bcuant[oa]s\b(?! pasos)|\bhow many\b|\bque edad\b|\bhow old\b|\bnumero de\b")),
    ("steps", re.compile(r"\bcomo (?!es\b|son\b|esta\b|estan\b|funciona\b|se llama\b|se si\b|saber\b|se que\b)\w+|"
                         r"\bque (hago|hacer|puedo hacer)\b|\bde que depende\b|"
                         r"\bque (servicios|beneficios|incluye|incluyen|cubre|cubren|ofrece|ofrecen)\b|"
                         r"\bque (necesito|requisitos|documentos|debo|papeles)\b|\bque (tengo|tiene|tienen|tenemos|hay) que\b|"
                         r"\ben que (me |nos |le )?(puede|pueden|podria|podrian) ayudar\b|"
                         r"\bpasos\b|\bhow (do|can|to|should)\b|\bwhat do i need\b|\brequirements?\b|\bdocuments?\b")),
    ("place", re.compile(r"\bdonde\b|\ba que (numero|telefono|web|pagina|sitio|direccion)\b|\btelefono\b|\bwhere\b|"
                         r"\bphone\b|\bwebsite\b|\bquien(es)?\b|\bwho\b|\bcual(es)?\b|\bwhich\b")),
    ("yes_no", re.compile(r"^(puedo|puede|pueden|se puede|es posible|tengo que|tiene que|debo|hay|me|mi|es|son|"
                          r"estoy|esta|necesito|incluye|cubre|can|do|does|is|are|will|should|must)\b")),
]

# "cuando comparo hospitales, ¿cuántas medidas…?": a clause that sets the scene asks nothing
LEADING_CLAUSE = re.compile(r"^(cuando|when|if|si) [^,?]+, (?=\S)")
MONTHS = (r"enero|febrero|marzo|abril|mayo|junio|julio|agosto|septiembre|setiembre|octubre|noviembre|diciembre|"
          r"january|february|march|april|may|june|july|august|september|october|november|december")
NUMBER_WORDS = (r"uno|una|dos|tres|cuatro|cinco|seis|siete|ocho|nueve|diez|once|doce|quince|veinte|treinta|"
                r"sesenta|noventa|cien")
UNITS = r"dias?|semanas?|mes(es)?|anos?|horas?|minutos?|days?|weeks?|months?|years?|hours?|minutes?"
# A place one can go to: a web address, an e-mail address or a phone number
ADDRESS = re.compile(r"https?://|www\.|\S@\S|\b\d{3}[- .]\d{3}[- .]?\d{3,4}\b")
# Whether a unit holds the kind of fact asked for (matched on plain text; amounts also on the raw text for € $)
FACTS: dict[str, re.Pattern] = {
    "amount": re.compile(r"[$€£]\s?\d|\d\s?[€%£$]|\d\s?(euros?|dolares|dollars?|por ciento|percent)\b|"
                         r"\bgratis\b|\bgratuit[oa]s?\b|"
                         r"\bsin costo\b|\bno (cuesta|tiene costo|cobra)\b|\bfree\b"),
    "duration": re.compile(rf"\b(\d+|un|{NUMBER_WORDS})\s+({UNITS})\b"),
    "date": re.compile(rf"\b({MONTHS})\b|\b\d{{1,2}}/\d{{1,2}}\b|\b(19|20)\d\d\b|\bdia \d+\b|"
                       r"\b(lunes|martes|miercoles|jueves|"
                       r"viernes|sabado|domingo)\b|\bcada (ano|mes|semana)\b|\b(antes|despues) de\b|"
                       r"\b(proximo|proxima|siguiente) (periodo|ano|mes|semana)\b"),
    "time": re.compile(r"\b\d{1,2}[:.]\d{2}\b|\b\d{1,2}\s?(h|am|pm)\b|\b24 horas\b|\b24/7\b"),
    "number": re.compile(rf"\b\d+\b|\b({NUMBER_WORDS})\b"),
    "place": re.compile(ADDRESS.pattern + r"|\.(gov|com|org|es)\b|\b(oficina|sitio web|pagina web|"
                        r"telefono|llame|llamar|en linea|tienda|app|area de cliente)\b"),
    "yes_no": re.compile(r"\b(si|no|solo|siempre que|a menos que|excepto|salvo|puede|puedes|pueden|debe|debes|"
                         r"tiene que|"
                         r"tienes que|only|unless|except|can|must)\b"),
}
# Words that tell the customer's own situation ("tengo 28 años", "mi plan", "me cambio de…")
SITUATION = re.compile(r"\b(tengo|tenemos|somos|soy|estoy|estuve|estuvimos|hace|llevo|llevamos|mi|mis|nuestro|"
                       r"nuestra|gano|ganamos|vivo|vivimos|pago|pagamos|vengo|venimos|cambio|cambie|cambiarme|"
                       r"i'?m|i am|we are|i have|we have|my|our)\b")
# What a question names after "de" ("el plan dental de Delta", "el teléfono de Aetna"), with the words
# before it: a name the documents never use is something they do not cover, unless it tells the
# customer's own situation ("tengo seguro de Kaiser", "me cambio de Vodafone"); "de verdad" and the like
# name nothing
NAMED = re.compile(r"(?P<before>(?:\S+ ){0,3})\bdel? (?!(?:verdad|veras|repente|pronto|plano|volada|golpe|hecho|"
                   r"inmediato|nuevo|momento|acuerdo|casualidad|broma)\b)(?P<name>\w+)")
ASKING_SENTENCE = re.compile(r"[^.?!\n]+[.?!]*")  # a sentence, with the marks that end it ("…?")

RETRIEVED_WEIGHT = 2.5  # a unit of the chunk retrieval found: most answers are in it (measured)
# A unit naming every number the question names ("la tarifa de 20 GB", "somos 4") is about what was
# asked, even outside the chunk retrieval found (measured)
SAME_NUMBERS_WEIGHT = 2.0
NUMBER = re.compile(r"\b\d+\b")
COMPANION_SHARE = 0.2  # a unit quoted beside the best scores at least this share of its score
PERCENTAGE = re.compile(r"\d\s?%|\bpor ciento\b|\bpercent\b")
# Kinds whose facts are recognised surely enough that a unit without one is not the answer
DECISIVE_FACTS = {"percentage", "amount", "duration", "time", "date"}
# A heading (or the page's title) the question restates, this share of its words at least, is
# answered by its section's opening lines, unless the question asks for a figure or a place
RESTATED_HEADING = 0.7
ASKS_A_FIGURE_OR_PLACE = DECISIVE_FACTS | {"number", "place"}


@dataclass(frozen=True)
class Unit:
    """A part of a page that can be quoted on its own."""

    text: str  # as quoted: a sentence, or a lead-in line and its list items one per line
    heading: str  # the heading it is under ("" before the first)
    position: int  # reading order on the page
    sentences: int  # what it counts for against MAX_SENTENCES
    pointer: bool = False  # "Más información sobre X: <address>": an answer to "where", not to others

    @property
    def is_list(self) -> bool:
        return "\n" in self.text


def answer_kind(question: str) -> str:
    """What the question asks for: definition, duration, percentage, amount, time, date, number,
    steps, place, yes_no or ""."""
    return _kind_and_rest(question)[0]


def asked_about(question: str) -> str:
    """The question without the words that ask for a kind of fact ("cuánto cuesta", "a qué hora")."""
    return _kind_and_rest(question)[1]


def _kind_and_rest(question: str) -> tuple[str, str]:
    """The kind of answer asked for, and the question without the words that ask for it ("cuánto
    cuesta", "a qué hora"): those say what kind of fact to quote, not which one."""
    text = CHAT_SHORTHAND.sub(lambda found: SHORTHAND[found.group(0)], plain(question).strip(" ¿?¡!"))
    main_clause = LEADING_CLAUSE.sub("", text)
    for kind, pattern in ANSWER_KINDS:
        if pattern.search(main_clause):
            return kind, text if kind == "yes_no" else pattern.sub(" ", text)
    return "", text


def names_asked_about(message: str) -> list[str]:
    """The words the question names after "de" ("el teléfono de Aetna": aetna), but not those of the
    customer's own situation ("tengo seguro de Kaiser", "me cambio de Vodafone"). Only in the
    sentences that ask, when some do: "¿cuánto cuesta la fibra? Lo vi en la web de Movistar" asks
    nothing of Movistar."""
    asking = [sentence for sentence in ASKING_SENTENCE.findall(message) if sentence.endswith("?")]
    return _names_after_de(" ".join(asking) or message, situation=False)


def names_of_situation(question: str) -> list[str]:
    """The words a question names after "de" as the customer's own situation ("me cambio de Vodafone")."""
    return _names_after_de(question, situation=True)


def _names_after_de(text: str, situation: bool) -> list[str]:
    return [named["name"] for named in NAMED.finditer(plain(text))
            if bool(SITUATION.search(named["before"])) == situation]


def holds_fact(text: str, kind: str) -> bool:
    """Whether `text` states the kind of fact asked for ("steps": is a list)."""
    if kind == "percentage":
        return bool(PERCENTAGE.search(plain(text)))
    if kind == "steps":
        return "\n" in text
    pattern = FACTS.get(kind)
    return bool(pattern and pattern.search(plain(text)))


def page_units(chunks: list[tuple[str, str]], context: set[str]) -> list[Unit]:
    """A page's chunks, (text, the heading it starts under) in reading order, as quotable units,
    each once (chunks overlap), without the title and heading lines chunks are prefixed with
    (`context`) and what is about the page."""
    units: list[Unit] = []
    seen: list[str] = []
    for text, heading in chunks:
        for unit in _units_of(text, context, heading):
            flat = plain(unit.text)
            if any(flat in earlier for earlier in seen):
                continue
            seen.append(flat)
            units.append(Unit(unit.text, unit.heading, len(units), unit.sentences, unit.pointer))
    return units


def _units_of(text: str, context: set[str], heading: str) -> list[Unit]:
    units: list[Unit] = []
    header, lead, items, numbered = "", None, [], False
    # what a list would be introduced by if no sentence ending in ":" does: the heading right above
    # it, or for numbered steps the paragraph right above them
    above: list[str] = [heading] if heading else []

    def close_list() -> None:
        """A list introduced by a sentence ending in ":", or numbered (steps), is one unit, with its
        lead-in; the items of another list stand alone."""
        nonlocal lead, items, numbered
        if items and not lead and numbered and above:
            lead = " ".join(above)
            if above != [heading]:
                del units[len(units) - len(above):]  # the paragraph, taken as sentences before its steps came
        if items and (lead or numbered):
            body = "\n".join(items[:MAX_LIST_ITEMS])
            if lead and units and units[-1].text == lead:
                del units[-1]  # the lead-in, taken as a sentence before its list came
            units.append(Unit(f"{lead}\n{body}" if lead else body, heading, 0, MAX_SENTENCES))
        else:
            units.extend(Unit(LIST_ITEM.sub("", item), heading, 0, 1) for item in items)
        lead, items, numbered = None, [], False

    lines = [line.strip() for line in text.splitlines()]
    for n, line in enumerate(lines):
        if not line or line in context:
            continue
        found = HEADING.match(line)
        if found:
            close_list()
            heading, header = found.group(2).strip(), ""
            above = [heading]
            continue
        if TABLE_RULE.match(line):
            continue
        if line.startswith("|"):
            close_list()
            above = []
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            if n + 1 < len(lines) and TABLE_RULE.match(lines[n + 1]):
                header = cells  # the row above a table's rule is its header
                continue
            units.append(Unit(_table_row(header, cells), heading, 0, 1))
            continue
        line = MARKDOWN_LINK.sub(_link_text, line).replace("**", "").replace("__", "")
        if LIST_ITEM.match(line):
            numbered = numbered or bool(NUMBERED_ITEM.match(line))
            item = LIST_ITEM.sub("", line).strip()
            if item and not BARE_LINK.match(item):  # kept with its number, or as "- item"
                items.append(line if NUMBERED_ITEM.match(line) else f"- {item}")
            continue
        close_list()
        sentences = _with_short_ones_joined([s.strip() for s in SENTENCE_END.split(line) if s.strip()])
        above = []
        for sentence in sentences:
            if BARE_LINK.match(sentence):
                continue
            pointer = bool(ABOUT_THE_PAGE.match(plain(sentence)))
            if pointer and not WEB_ADDRESS.search(sentence):
                continue
            units.append(Unit(sentence, heading, 0, 1, pointer))
            above.append(sentence)
        above = above[-2:]
        if sentences and sentences[-1].endswith(":"):
            lead = sentences[-1]
    close_list()
    return units


def _link_text(link: re.Match) -> str:
    """A Markdown link as its text, and its address when it is a web address (WhatsApp shows it)."""
    text, address = link.group(1), link.group(2)
    return f"{text} ({address})" if WEB_ADDRESS.match(address) and address not in text else text


def _with_short_ones_joined(sentences: list[str]) -> list[str]:
    """A sentence of a few words ("No.", "Sí, puede.") joined to the one after it: alone it
    answers nothing."""
    joined: list[str] = []
    for sentence in sentences:
        if joined and len(joined[-1].split()) <= SHORT_SENTENCE_WORDS:
            joined[-1] = f"{joined[-1]} {sentence}"
        else:
            joined.append(sentence)
    return joined


def _table_row(header: list[str] | str, cells: list[str]) -> str:
    if isinstance(header, list) and len(header) == len(cells):
        return "; ".join(f"{name}: {cell}" if name else cell for name, cell in zip(header, cells) if cell)
    return ", ".join(cell for cell in cells if cell)


def choose(units: list[Unit], question: str, terms: Callable[[str], list[str]], kind: str,
           earlier: str = "", retrieved: str = "", title: str = "") -> list[Unit]:
    """The units to quote. When the question restates a heading or the page's `title` ("tengo
    Medicare, ¿tengo que hacer algo?" on "Tengo Medicare. ¿Necesito hacer algo?"), the opening
    lines of that section (not for a figure or a place asked for, nor when steps answer how).
    Else the best unit first, then its neighbours in the same section (or in
    the passage retrieval found, `retrieved`) while they add to it, up to MAX_SENTENCES or one list.
    A unit scores for the question's words it shares (weighted by how rare they are on the page;
    `earlier`, the message a follow-up follows, counts half), for those of its heading, for
    holding the fact asked for, for being in the passage retrieval found and for naming the
    numbers the question names."""
    if not units:
        return []
    unit_terms = [set(terms(unit.text)) for unit in units]
    weights = _rarity(unit_terms)
    own_kind, own_words = _kind_and_rest(question)
    own = {term: weights.get(term, 0.0) for term in terms(own_words)}
    wanted = {term: weights.get(term, 0.0) / 2 for term in terms(_kind_and_rest(earlier)[1])}
    wanted.update(own)
    has_fact = [bool(kind) and holds_fact(unit.text, kind) for unit in units]
    retrieved_text = plain(retrieved)
    in_retrieved = [plain(unit.text) in retrieved_text for unit in units]

    def shared(*texts: str) -> float:
        return math.fsum(wanted.get(term, 0.0) for term in {term for text in texts for term in terms(text)})

    numbers = set(NUMBER.findall(own_words))
    scores = []
    for unit, own_terms, fact, retrieved_unit in zip(units, unit_terms, has_fact, in_retrieved):
        # a list counts the words of its lead-in and its best item: all its items together would
        # outweigh any sentence
        lead, *items = unit.text.split("\n")
        score = max((shared(lead, item) for item in items), default=shared(lead))
        only_in_heading = set(terms(unit.heading)) - own_terms
        score += 0.5 * sum(w for term, w in wanted.items() if term in only_in_heading)
        if unit.pointer and kind != "place":
            score /= 2
        if kind == "definition" and unit.position < 2:
            score += 1.0  # what a thing is, a page about it says first
        if fact:
            score = score * 2 + 0.1
        if retrieved_unit:
            score = score * RETRIEVED_WEIGHT + 0.1
        if numbers and numbers <= set(NUMBER.findall(plain(unit.text))):
            score *= SAME_NUMBERS_WEIGHT
        scores.append(score)
    # the fact asked for decides among the units that share the question's words; steps only when
    # the question itself asks how (not a follow-up of one) and they (or their heading) name its
    # rarest word or two of its words
    rarest = max(own, key=own.get) if own else None

    def decides(i: int) -> bool:
        if kind == "steps":
            named = unit_terms[i] | set(terms(units[i].heading))
            return own_kind == "steps" and (rarest in named or len(named & own.keys()) >= 2)
        return kind in DECISIVE_FACTS

    with_fact = [i for i in range(len(units)) if scores[i] > 0 and has_fact[i] and decides(i)]
    # steps that name what the question asks how to do are its answer, whatever the heading says
    if kind not in ASKS_A_FIGURE_OR_PLACE and not (kind == "steps" and with_fact):
        opening = _restated_section(units, set(terms(question)), terms, title)
        if opening:
            return opening
    best = max(with_fact or range(len(units)), key=lambda i: (scores[i], -i))
    chosen = [best]
    budget = MAX_SENTENCES - units[best].sentences
    for i in sorted((i for i in range(len(units)) if i != best), key=lambda i: (-scores[i], i)):
        if budget <= 0 or scores[i] < scores[best] * COMPANION_SHARE:
            break
        near = units[i].heading == units[best].heading and abs(i - best) <= 2
        if units[i].sentences <= budget and (near or in_retrieved[i]):
            chosen.append(i)
            budget -= units[i].sentences
    follower = best + 1
    if ANNOUNCES_LIST.search(plain(units[best].text)) and not units[best].is_list:
        # "sigue estos pasos": the steps are the answer, even under the next heading
        following = next((i for i in range(follower, min(follower + 3, len(units))) if units[i].is_list), None)
        if following is not None:
            return [units[best], units[following]]
    # a sentence alone often needs the next one ("…: 12 meses. Después…")
    if len(chosen) == 1 and budget > 0 and not units[best].is_list and follower < len(units) and \
            units[follower].heading == units[best].heading and units[follower].sentences <= budget:
        chosen.append(follower)
    # "where": the web address or phone under the same heading, when what was chosen only says "the website"
    if kind == "place" and not any(ADDRESS.search(units[i].text) for i in chosen):
        address = next((i for i in range(max(0, best - 3), min(best + 4, len(units)))
                        if units[i].heading == units[best].heading and ADDRESS.search(units[i].text)), None)
        if address is not None:
            chosen.append(address)
    # the fact first, then what goes with it in the page's order
    ordered = [best] + sorted(i for i in chosen if i != best)
    return [_trimmed(units[i], wanted, terms) if kind != "steps" else units[i] for i in ordered]


def _restated_section(units: list[Unit], asked: set[str], terms: Callable[[str], list[str]],
                      title: str) -> list[Unit]:
    """The opening lines of the section whose heading the question restates (the page's title
    heads what comes before the first heading), up to MAX_SENTENCES or one list; [] if none."""
    starts = {title: 0}  # where each section opens
    for i, unit in enumerate(units):
        starts.setdefault(unit.heading, i)
    best_share, start = 0.0, None
    for heading, opens in starts.items():
        words = set(terms(heading))
        share = len(words & asked) / len(words) if words else 0.0
        if share > best_share:
            best_share, start = share, opens
    if start is None or best_share < RESTATED_HEADING:
        return []
    opening, budget = [], MAX_SENTENCES
    for unit in units[start:]:
        if unit.heading != units[start].heading or unit.sentences > budget:
            break
        if unit.pointer:
            continue
        opening.append(unit)
        budget -= unit.sentences
        if unit.is_list:
            break
    # an opening that only sets the scene ("Sentimos que quieras irte.") is not the answer
    return opening if opening and asked & set(terms(opening[0].text)) else []


def _trimmed(unit: Unit, wanted: dict[str, float], terms: Callable[[str], list[str]]) -> Unit:
    """A list with only the items the question names ("la tienda de Madrid": its line), when it
    names some and not all; a list of steps or one the question does not single out stays whole."""
    if not unit.is_list:
        return unit
    lead, *items = unit.text.split("\n")
    named = [item for item in items if any(wanted.get(term, 0) > 0 for term in terms(item))]
    if not named or len(named) == len(items):
        return unit
    return Unit("\n".join([lead, *named]), unit.heading, unit.position, unit.sentences)


def _rarity(unit_terms: list[set[str]]) -> dict[str, float]:
    """How rare each word is among the page's units (inverse document frequency): on a page about
    leaving, "baja" tells nothing about which sentence answers."""
    counts: dict[str, int] = {}
    for own in unit_terms:
        for term in own:
            counts[term] = counts.get(term, 0) + 1
    total = len(unit_terms)
    return {term: math.log((total + 1) / (count + 0.5)) for term, count in counts.items()}


def quote(units: list[Unit]) -> str:
    """The chosen units as the reply's body: one line per unit, lists as they are."""
    return "\n".join(unit.text for unit in units)
