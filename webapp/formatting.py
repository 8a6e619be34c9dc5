"""Turn an assistant's answer (Markdown or plain text) into WhatsApp messages: WhatsApp's own
markup, capped at MAX_REPLY_CHARS, split into parts as long as the channel takes (each channel's
`max_part_chars`).

Lengths are Python ``len()`` code points. A provider may count some characters (emoji, non-GSM
text) differently, so callers can pass a lower ``limit``.
"""

import re
import unicodedata

MAX_REPLY_CHARS = 4000

# Private-use characters: markers that no Markdown rule below can match.
_BOLD = "\ue002"
_SLOT = re.compile("\ue000(\\d+)\ue001")

_FENCE = re.compile(r"```[^\n`]*\n?(.*?)```", re.DOTALL)
_INLINE_CODE = re.compile(r"`[^`\n]+`")
_HTML_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
# Known tag names only, so plain-text placeholders such as "<su número>" survive.
_HTML_TAG = re.compile(
    r"</?(?:a|b|blockquote|br|code|del|div|em|h[1-6]|hr|i|img|li|ol|p|pre|s|span|strong|"
    r"sub|sup|table|tbody|td|th|thead|tr|u|ul)\b[^<>]*>",
    re.IGNORECASE,
)
_AUTOLINK = re.compile(r"<(https?://[^\s<>]+)>")
_LINK = re.compile(
    r"!?\[([^\]\n]*)\]\(\s*<?((?:[^()\s<>]|\([^()\s]*\))+)>?(?:\s+[\"'][^\"'\n]*[\"'])?\s*\)"
)
# A bare URL; trailing punctuation and Markdown markers are left outside it.
_URL = re.compile(r"https?://[^\s<>*]*[^\s<>*_~.,;:!?'\")\]]")

_HEADING = re.compile(r" {0,3}#{1,6}\s+(.+?)(?:\s+#+)?\s*")
_RULE = re.compile(r"\s*([-*_])(?:\s*\1){2,}\s*")
_TABLE_SEPARATOR = re.compile(r"\s*\|?(?:\s*:?-+:?\s*\|)+\s*(?::?-+:?\s*)?")
_BULLET = re.compile(r"(\s*)[-*+]\s+(.*)")
_NUMBERED = re.compile(r"(\s*)(\d+)[.)]\s+(.*)")

_BOLD_ITALIC = re.compile(r"\*\*\*(?=\S)(.+?)(?<=\S)\*\*\*")
_BOLD_STARS = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")
_BOLD_UNDERSCORES = re.compile(r"(?<!\w)__(?=\S)(.+?)(?<=\S)__(?!\w)")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
# Needs a non-space right inside each star and no word char outside: keeps `5 * 3` and `2*3*4`.
_ITALIC_STAR = re.compile(r"(?<![\w*])\*(?=[^\s*])(.+?)(?<=[^\s*])\*(?![\w*])")

# Zero-width (non-)joiners stay: they build emoji (👩‍💻, 🏳️‍🌈) and shape Persian and Indic text.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]")

# Each pattern's match end is a candidate cut offset.
_SENTENCE_END = re.compile(r"[.!?…]+[)\]\"'»”’*_~]*(?=\s)")
_PARAGRAPH_BREAK = re.compile(r"(?=\n[ \t]*\n)")
_LINE_BREAK = re.compile(r"(?=\n)")
_WORD_BREAK = re.compile(r"(?=\s)")


def strip_control_chars(text: str) -> str:
    """Drop control, zero-width space, direction-mark and bidi-override characters; normalise
    newlines, tabs and NFC; replace lone surrogates (JSON can carry them, UTF-8 cannot) with U+FFFD."""
    text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    return unicodedata.normalize("NFC", _CONTROL.sub("", text))


def _convert_line(line: str) -> str | None:
    """Convert one line's block-level Markdown; None drops the line (table separator)."""
    if match := _HEADING.fullmatch(line):
        title = match[1].replace("**", "").replace("__", "")
        return f"{_BOLD}{title}{_BOLD}"
    if _TABLE_SEPARATOR.fullmatch(line):
        return None
    if _RULE.fullmatch(line):
        return ""
    if line.lstrip().startswith("|"):
        cells = (cell.strip() for cell in line.strip().strip("|").split("|"))
        return " — ".join(cell for cell in cells if cell)
    if match := _BULLET.fullmatch(line):
        return " " * len(match[1].expandtabs(4)) + "• " + match[2]
    if match := _NUMBERED.fullmatch(line):
        return f"{match[1]}{match[2]}. {match[3]}"
    return line.rstrip()


def to_whatsapp_markup(text: str) -> str:
    """Convert Markdown (and stray HTML) to WhatsApp's formatting syntax."""
    saved: list[str] = []

    def protect(value: str) -> str:
        saved.append(value)
        return f"\ue000{len(saved) - 1}\ue001"

    def link(match: re.Match) -> str:
        label, url = match[1].strip(), match[2]
        return protect(url) if not label or label == url else f"{label} ({protect(url)})"

    # Code and URLs are set aside first so no formatting rule touches them.
    text = _FENCE.sub(lambda m: protect(f"```{m[1].rstrip()}```"), text)
    text = _INLINE_CODE.sub(lambda m: protect(m[0]), text)
    text = _HTML_TAG.sub("", _HTML_BREAK.sub("\n", text))
    text = _LINK.sub(link, text)
    text = _AUTOLINK.sub(lambda m: protect(m[1]), text)
    text = _URL.sub(lambda m: protect(m[0]), text)

    lines = (_convert_line(line) for line in text.split("\n"))
    text = "\n".join(line for line in lines if line is not None)
    text = _BOLD_ITALIC.sub(f"{_BOLD}_\\1_{_BOLD}", text)
    text = _BOLD_STARS.sub(f"{_BOLD}\\1{_BOLD}", text)
    text = _BOLD_UNDERSCORES.sub(f"{_BOLD}\\1{_BOLD}", text)
    text = _STRIKE.sub(r"~\1~", text)
    text = _ITALIC_STAR.sub(r"_\1_", text).replace(_BOLD, "*")
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    return _SLOT.sub(lambda m: saved[int(m[1])], text)


def _last_cut(pattern: re.Pattern, window: str) -> int:
    """Return the end offset of the last match of ``pattern`` in ``window``, or 0."""
    ends = [match.end() for match in pattern.finditer(window)]
    return ends[-1] if ends else 0


def cap_text(text: str, limit: int = MAX_REPLY_CHARS) -> str:
    """Shorten ``text`` to at most ``limit`` characters, preferably at a sentence or line end."""
    text = text.strip()
    if len(text) <= limit:
        return text
    # One extra character lets the patterns see the whitespace that follows a cut at ``limit``.
    window = text[: limit + 1]
    cut = max(_last_cut(_SENTENCE_END, window), _last_cut(_LINE_BREAK, window))
    if cut >= 0.6 * limit:
        return text[:cut].strip()
    # Cut before the last whitespace so URLs stay whole, leaving room for the ellipsis.
    cut = _last_cut(_WORD_BREAK, text[:limit])
    head = text[:cut] if cut else text[: limit - 1]
    return head.rstrip(" \n,;:") + "…"


def split_parts(text: str, limit: int) -> list[str]:
    """Split ``text`` into messages of at most ``limit`` characters, packed greedily.

    Cuts go at the last paragraph break, else line break, else sentence end that
    fills at least half a message; failing that at a word boundary, else a hard cut.
    """
    parts: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        window = rest[: limit + 1]
        preferred = (_last_cut(p, window) for p in (_PARAGRAPH_BREAK, _LINE_BREAK, _SENTENCE_END))
        cut = next((c for c in preferred if c >= limit // 2), 0)
        cut = cut or _last_cut(_WORD_BREAK, window) or limit
        parts.append(rest[:cut].strip())
        rest = rest[cut:].strip()
    if rest:
        parts.append(rest)
    return parts


def format_reply(text: str, part_chars: int, max_chars: int = MAX_REPLY_CHARS) -> list[str]:
    """Clean, convert, cap (at `max_chars`, at most MAX_REPLY_CHARS) and split an answer into the
    WhatsApp messages to send, in order, each at most `part_chars` long."""
    text = to_whatsapp_markup(strip_control_chars(text))
    return split_parts(cap_text(text, min(max_chars, MAX_REPLY_CHARS)), part_chars)
