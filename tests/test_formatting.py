import re

import pytest

from webapp.formatting import (
    MAX_REPLY_CHARS,
    cap_text,
    format_reply,
    split_parts,
    strip_control_chars,
    to_whatsapp_markup,
)

MAX_PART_CHARS = 1600  # Twilio's, the shortest a channel takes

SPANISH_SENTENCES = [
    "Nuestra oficina principal abre de lunes a viernes, de 9:00 a 18:00, y los sábados hasta el mediodía.",
    "¿Necesita cambiar la dirección de entrega de su pedido?",
    "Puede hacerlo desde la sección «Mis pedidos» antes de que el paquete salga del almacén.",
    "¡Gracias por confiar en nosotros durante tantos años!",
    "El reembolso se procesa en un plazo de cinco a diez días hábiles, según la entidad bancaria.",
    "Si el artículo llegó dañado, envíenos una fotografía junto con el número de pedido.",
    "¿Sabía que también ofrecemos atención telefónica en catalán, gallego y euskera?",
    "La garantía cubre defectos de fabricación durante dos años a partir de la fecha de compra.",
    "Por motivos de seguridad, nunca le pediremos su contraseña por mensaje ni por correo electrónico.",
    "Los envíos a Canarias, Ceuta y Melilla pueden tardar algo más debido a los trámites aduaneros.",
    "¡Aproveche el descuento del quince por ciento en su próxima compra con el código BIENVENIDA!",
    "Recuerde que las devoluciones deben realizarse en el embalaje original y con todas sus etiquetas.",
    "¿Prefiere recibir la factura en papel?",
    "Solo tiene que indicarlo en las preferencias de su cuenta y se la enviaremos por correo postal.",
    "Nuestro equipo técnico revisará el diagnóstico y le contactará en un máximo de cuarenta y ocho horas.",
]


def build_spanish_answer(min_chars: int = 5000) -> str:
    """Paragraphs of varied length (one longer than a WhatsApp part) cycling through the sentences."""
    paragraphs, index = [], 0
    for size in [3, 5, 2, 20, 4, 6, 3, 8, 2, 5] * 3:
        paragraphs.append(" ".join(SPANISH_SENTENCES[(index + i) % len(SPANISH_SENTENCES)] for i in range(size)))
        index += size
        if len("\n\n".join(paragraphs)) >= min_chars:
            break
    return "\n\n".join(paragraphs)


# --- to_whatsapp_markup ------------------------------------------------------


@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        ("Es **muy** importante", "Es *muy* importante"),
        ("Es __muy__ importante", "Es *muy* importante"),
        ("Es *algo* urgente", "Es _algo_ urgente"),
        ("Es _algo_ urgente", "Es _algo_ urgente"),
        ("Precio ~~20 €~~ 15 €", "Precio ~20 €~ 15 €"),
        ("***Atención***", "*_Atención_*"),
        ("**Negrita** y *cursiva* en la misma línea", "*Negrita* y _cursiva_ en la misma línea"),
        ("# Horario", "*Horario*"),
        ("### Horario de atención ###", "*Horario de atención*"),
        ("## **Envíos**", "*Envíos*"),
        ("- uno\n* dos\n+ tres", "• uno\n• dos\n• tres"),
        ("- padre\n  - hijo\n    - nieto", "• padre\n  • hijo\n    • nieto"),
        ("1. primero\n2) segundo\n10. décimo", "1. primero\n2. segundo\n10. décimo"),
        ("Visite [nuestra web](https://ejemplo.es/ayuda)", "Visite nuestra web (https://ejemplo.es/ayuda)"),
        ("[https://ejemplo.es](https://ejemplo.es)", "https://ejemplo.es"),
        ('[FAQ](https://ejemplo.es/faq "Preguntas")', "FAQ (https://ejemplo.es/faq)"),
        ("![Mapa de la tienda](https://ejemplo.es/mapa.png)", "Mapa de la tienda (https://ejemplo.es/mapa.png)"),
        ("Escriba a <https://ejemplo.es/contacto>", "Escriba a https://ejemplo.es/contacto"),
        ("Use `**no_cambiar**` aquí", "Use `**no_cambiar**` aquí"),
        ("```python\nx = a * b\n**kw**\n```", "```x = a * b\n**kw**```"),
        ("| Día | Hora |\n|---|:---:|\n| Lunes | 9-18 |", "Día — Hora\nLunes — 9-18"),
        ("<p>Hola <b>Ana</b></p>", "Hola Ana"),
        ('<div class="nota">Hola <a href="https://x.es">aquí</a><BR>fin</div>', "Hola aquí\nfin"),
        ("línea<br>otra<br/>fin", "línea\notra\nfin"),
        ("uno\n\n\n\n\ndos", "uno\n\ndos"),
        ("uno\n---\ndos", "uno\n\ndos"),
    ],
)
def test_markdown_constructs(markdown: str, expected: str) -> None:
    assert to_whatsapp_markup(markdown) == expected


@pytest.mark.parametrize(
    "plain",
    [
        "5 * 3 = 15",
        "2*3*4 = 24",
        "a * b * c",
        "snake_case_name",
        "El campo precio_final incluye IVA",
        "Vea https://ejemplo.es/a__b__c_d y listo",
        "Use el comodín * para buscar",
        "Compare 3 < 5 > 2",
        "Responda con <su número de pedido>",
        "Hola, ¿en qué puedo ayudarle hoy?",
    ],
)
def test_plain_text_is_untouched(plain: str) -> None:
    assert to_whatsapp_markup(plain) == plain


# --- strip_control_chars -----------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ho\u200bla", "hola"),
        ("\ufeffhola", "hola"),
        ("a\u200cb\u200dc\u200ed\u200fe", "a\u200cb\u200dcde"),
        ("\U0001f469\u200d\U0001f4bb listo", "\U0001f469\u200d\U0001f4bb listo"),  # 👩‍💻 stays one emoji
        ("pago\u202e\u202a\u2066 seguro\u2069", "pago seguro"),
        ("uno\r\ndos\rtres", "uno\ndos\ntres"),
        ("col1\tcol2", "col1 col2"),
        ("campana\x07\x00\x1b[0m", "campana[0m"),
        ("c1\x85\x9f\x7f", "c1"),
        ("cafe\u0301", "café"),
        ("línea\nnueva 👍 ¿sí?", "línea\nnueva 👍 ¿sí?"),
    ],
)
def test_strip_control_chars(raw: str, expected: str) -> None:
    assert strip_control_chars(raw) == expected


# --- cap_text ----------------------------------------------------------------


def test_cap_text_within_limit_is_only_stripped() -> None:
    assert cap_text("  Hola, ¿qué tal?  \n") == "Hola, ¿qué tal?"


@pytest.mark.parametrize("limit", [120, 257, 1000, MAX_REPLY_CHARS])
def test_cap_text_ends_on_sentence_end(limit: int) -> None:
    text = build_spanish_answer(5000)
    capped = cap_text(text, limit)
    assert len(capped) <= limit
    assert capped[-1] in ".!?"
    assert text.startswith(capped)


def test_cap_text_cuts_at_paragraph_break() -> None:
    text = "Primer párrafo sin punto final\n\nSegundo párrafo que es bastante más largo"
    assert cap_text(text, 45) == "Primer párrafo sin punto final"


def test_cap_text_falls_back_to_word_boundary_with_ellipsis() -> None:
    text = "Hola. " + "palabra " * 100
    capped = cap_text(text, 100)
    assert len(capped) <= 100
    assert capped.endswith("palabra…")
    assert capped[:-1].split()[1:] == ["palabra"] * (len(capped[:-1].split()) - 1)


def test_cap_text_does_not_cut_inside_url() -> None:
    text = "Consulte el enlace https://ejemplo.es/" + "a" * 80 + " para más información"
    assert cap_text(text, 100) == "Consulte el enlace…"


def test_cap_text_hard_cuts_a_single_huge_token() -> None:
    assert cap_text("x" * 200, 50) == "x" * 49 + "…"


# --- split_parts -------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   ", "\n\n\t \n"])
def test_split_parts_empty(text: str) -> None:
    assert split_parts(text, MAX_PART_CHARS) == []


def test_split_parts_short_text_is_one_part() -> None:
    assert split_parts("  ¡Hola! ¿En qué puedo ayudarle?  ", MAX_PART_CHARS) == ["¡Hola! ¿En qué puedo ayudarle?"]


def test_split_parts_packs_whole_paragraphs_greedily() -> None:
    paragraphs = [f"Párrafo {n}. " + "texto " * 110 for n in range(3)]
    parts = split_parts("\n\n".join(p.strip() for p in paragraphs), MAX_PART_CHARS)
    assert parts == ["\n\n".join(p.strip() for p in paragraphs[:2]), paragraphs[2].strip()]


def test_split_parts_uses_sentence_ends_inside_a_long_paragraph() -> None:
    text = " ".join(SPANISH_SENTENCES * 3)
    parts = split_parts(text, 500)
    assert len(parts) > 1
    assert all(len(part) <= 500 and part[-1] in ".!?" for part in parts)
    assert " ".join(parts) == text


def test_split_parts_prefers_line_breaks_over_sentences() -> None:
    lines = [f"• Opción {n}: " + "detalle. " * 8 for n in range(10)]
    parts = split_parts("\n".join(line.strip() for line in lines), 300)
    assert all(len(part) <= 300 for part in parts)
    assert all(part.split("\n")[-1] in {line.strip() for line in lines} for part in parts)


def test_split_parts_falls_back_to_word_boundaries() -> None:
    text = " ".join(f"palabra{n}" for n in range(400))
    parts = split_parts(text, 200)
    assert all(0 < len(part) <= 200 for part in parts)
    assert " ".join(parts).split() == text.split()


def test_split_parts_hard_splits_a_single_huge_word() -> None:
    word = "ab" * 1500
    parts = split_parts(word, MAX_PART_CHARS)
    assert parts == [word[:MAX_PART_CHARS], word[MAX_PART_CHARS:]]
    assert "".join(parts) == word


# --- format_reply ------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "  \n\t  ", "\u200b\ufeff"])
def test_format_reply_empty(text: str) -> None:
    assert format_reply(text, MAX_PART_CHARS) == []


def test_format_reply_short_text_unchanged() -> None:
    text = "Su pedido llegará mañana entre las 9:00 y las 14:00. ¡Gracias!"
    assert format_reply(text, MAX_PART_CHARS) == [text]


def test_format_reply_converts_and_cleans() -> None:
    assert format_reply("## Envío\r\n\r\n- **Gratis** desde 50\u00a0€\u200b", MAX_PART_CHARS) == [
        "*Envío*\n\n• *Gratis* desde 50\u00a0€"]


def test_format_reply_long_spanish_answer() -> None:
    text = build_spanish_answer(5000)
    assert len(text) >= 5000
    capped = cap_text(to_whatsapp_markup(strip_control_chars(text)), MAX_REPLY_CHARS)

    parts = format_reply(text, MAX_PART_CHARS)

    assert sum(len(part) for part in parts) <= MAX_REPLY_CHARS
    assert len(parts) >= 3
    assert all(0 < len(part) <= MAX_PART_CHARS for part in parts)
    assert all(re.search(r"[.!?…]$", part) for part in parts)
    assert " ".join(parts).split() == capped.split()
    assert text.split()[: len(capped.split())] == capped.split()
