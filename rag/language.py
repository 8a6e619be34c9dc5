"""The customer's language, and the few fixed phrases the assistant says in it."""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

SUPPORTED = ("es", "en", "pt", "fr")
MIN_CONFIDENCE = 0.7  # below this ("hola", "ok") the guess is noise: keep the fallback

PHRASES = {
    "dont_know": {
        "es": "Lo siento, no tengo esa información. Si quieres, te pongo en contacto con una persona del equipo.",
        "en": "Sorry, I don't have that information. If you like, I can put you in touch with a person from our team.",
        "pt": "Desculpe, não tenho essa informação. Se quiser, posso colocá-lo em contato com uma pessoa da equipe.",
        "fr": "Désolé, je n'ai pas cette information. Si vous voulez, je peux vous mettre en contact avec une personne de l'équipe.",
    },
    "greeting": {
        "es": "¡Hola! Soy el asistente virtual de {company}. ¿En qué puedo ayudarte?",
        "en": "Hi! I'm the virtual assistant of {company}. How can I help you?",
        "pt": "Olá! Sou o assistente virtual da {company}. Como posso ajudar?",
        "fr": "Bonjour ! Je suis l'assistant virtuel de {company}. Comment puis-je vous aider ?",
    },
    "thanks": {
        "es": "¡De nada! Si necesitas algo más, aquí estoy.",
        "en": "You're welcome! If you need anything else, I'm here.",
        "pt": "De nada! Se precisar de mais alguma coisa, estou aqui.",
        "fr": "Avec plaisir ! Si vous avez besoin d'autre chose, je suis là.",
    },
    "found": {
        "es": "Esto es lo que encontré:",
        "en": "Here is what our documents say:",
        "pt": "Veja o que dizem nossos documentos:",
        "fr": "Voici ce que disent nos documents :",
    },
    "source": {
        "es": "Fuente: {title}",
        "en": "Source: {title}",
        "pt": "Fonte: {title}",
        "fr": "Source : {title}",
    },
    "error": {
        "es": "Perdona, ahora mismo no puedo responder. Inténtalo de nuevo en unos minutos.",
        "en": "Sorry, I can't answer right now. Please try again in a few minutes.",
        "pt": "Desculpe, não consigo responder agora. Tente novamente em alguns minutos.",
        "fr": "Désolé, je ne peux pas répondre pour le moment. Réessayez dans quelques minutes.",
    },
    "rate_limited": {
        "es": "Estás enviando muchos mensajes seguidos. Los he recibido; espera un momento antes de escribir de nuevo.",
        "en": "You are sending many messages in a row. I have received them; please wait a moment before writing again.",
        "pt": "Você está enviando muitas mensagens seguidas. Eu as recebi; aguarde um momento antes de escrever novamente.",
        "fr": "Vous envoyez beaucoup de messages d'affilée. Je les ai reçus ; attendez un instant avant d'écrire à nouveau.",
    },
    "contact_noted": {
        "es": "¡Gracias! Lo he anotado. ¿En qué más puedo ayudarte?",
        "en": "Thank you! I've noted it. How else can I help?",
        "pt": "Obrigado! Anotei. Em que mais posso ajudar?",
        "fr": "Merci ! C'est noté. Que puis-je faire d'autre pour vous ?",
    },
    "talk_to_person": {  # a button's title: at most 20 characters
        "es": "Hablar con alguien",
        "en": "Talk to a person",
        "pt": "Falar com alguém",
        "fr": "Parler à quelqu'un",
    },
    "feedback_ask": {
        "es": "¿Te sirvió esta respuesta? 👍 / 👎",
        "en": "Was this answer helpful? 👍 / 👎",
        "pt": "Esta resposta ajudou? 👍 / 👎",
        "fr": "Cette réponse vous a-t-elle aidé ? 👍 / 👎",
    },
    "feedback_thanks": {
        "es": "¡Gracias por decírmelo!",
        "en": "Thanks for letting me know!",
        "pt": "Obrigado por me dizer!",
        "fr": "Merci de me l'avoir dit !",
    },
    "feedback_sorry": {
        "es": "Gracias por decírmelo. Si quieres, te pongo en contacto con una persona del equipo.",
        "en": "Thanks for letting me know. If you like, I can put you in touch with a person from our team.",
        "pt": "Obrigado por me dizer. Se quiser, posso colocá-lo em contato com uma pessoa da equipe.",
        "fr": "Merci de me l'avoir dit. Si vous voulez, je peux vous mettre en contact avec une personne de l'équipe.",
    },
    "handoff": {
        "es": "Te paso con una persona del equipo: te responderá por aquí lo antes posible.",
        "en": "I'm passing you to a person from our team: they will reply here as soon as they can.",
        "pt": "Vou passar você para uma pessoa da equipe: ela responderá por aqui assim que puder.",
        "fr": "Je vous passe une personne de l'équipe : elle vous répondra ici dès que possible.",
    },
    "send_voice_as_text": {
        "es": "Todavía no puedo escuchar notas de voz. ¿Me escribes tu pregunta?",
        "en": "I can't listen to voice notes yet. Could you type your question?",
        "pt": "Ainda não consigo ouvir mensagens de voz. Pode escrever sua pergunta?",
        "fr": "Je ne peux pas encore écouter les messages vocaux. Pouvez-vous écrire votre question ?",
    },
    "send_text": {
        "es": "Por ahora solo puedo leer mensajes de texto. ¿Me escribes tu pregunta?",
        "en": "For now I can only read text messages. Could you type your question?",
        "pt": "Por enquanto só consigo ler mensagens de texto. Pode escrever sua pergunta?",
        "fr": "Pour l'instant je ne lis que les messages texte. Pouvez-vous écrire votre question ?",
    },
}


SMALL_TALK = {
    "greeting": re.compile(
        r"^(hola+|buen[oa]s( dias| tardes| noches)?|hey|hi|hello|good (morning|afternoon|evening)|"
        r"ola|oi|bom dia|boa tarde|boa noite|bonjour|salut)$"
    ),
    "thanks": re.compile(
        r"^((muchas )?gracias|thanks|thank you|obrigad[oa]|merci( beaucoup)?|ok|vale|genial|perfecto)$"
    ),
}


# Asking for a person: a request to talk to one, or the bare word. Matched on `plain` text.
_PERSON = r"(persona|humano|alguien|agente|asesor|operador|encargado|human|person|someone|somebody|agent|" \
          r"representative|operator|atendente|pessoa|alguem|humain|personne|quelqu un|conseiller)"
_ARTICLE = r"((un|una|a|an|um|uma|une)\s+)?"
WANTS_PERSON = re.compile(
    # "quiero hablar con una persona", "can I speak to someone", "pásame con un agente"
    rf"\b(hablar|habla|hablo|comunicarme|contactar|pasame|pasarme|ponme|talk|speak|chat|falar|conversar|parler|"
    rf"discuter)\b(\s+\w+){{0,3}}?\s+((con|with|to|com|a|avec)\s+)?{_ARTICLE}(real\s+)?{_PERSON}\b"
    # "quiero un humano", "I need an agent"
    rf"|\b(quiero|necesito|want|need|quero|preciso|veux|voudrais)\s+{_ARTICLE}{_PERSON}\b"
    # the bare word: "humano", "agent please", "persona real"
    rf"|^{_ARTICLE}{_PERSON}( real| de verdad)?( por favor| porfa| please)?$"
)
# Saying yes, to the offer of a person that comes with "I don't know".
YES = re.compile(r"^(si|vale|ok|okay|claro|si claro|claro que si|por favor|si por favor|yes|yes please|sure|please|"
                 r"sim|sim por favor|oui|d accord|oui merci)$")


@lru_cache(maxsize=8192)
def plain(text: str) -> str:
    """Lower case without accents: customers rarely type them. Remembered: the same pages' texts
    are compared with every question."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def small_talk(text: str) -> str | None:
    """'greeting' or 'thanks' for a bare greeting or thanks (nothing to look up), else None."""
    words = _words(text)
    return next((kind for kind, pattern in SMALL_TALK.items() if pattern.match(words)), None)


def _words(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s]", " ", plain(text))).strip()


def wants_person(text: str) -> bool:
    """The customer asks to talk to a person ("quiero hablar con alguien", "agent", "humano")."""
    return bool(WANTS_PERSON.search(_words(text)))


def says_yes(text: str) -> bool:
    return bool(YES.match(_words(text)))


@lru_cache(maxsize=1)
def _identifier():
    from pathlib import Path

    from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(Path(MODEL_DIR) / MODEL_FILE, norm_probs=True)
    identifier.set_languages(list(SUPPORTED) + ["it", "de", "ca"])  # near neighbours absorb noise
    return identifier


def detect_language(text: str, fallback: str = "es") -> str:
    """The language of `text` among SUPPORTED, or `fallback` when unsure."""
    if not text.strip():
        return fallback
    language, confidence = _identifier().classify(text)
    return language if language in SUPPORTED and confidence >= MIN_CONFIDENCE else fallback


def phrase(key: str, language: str, **values: str) -> str:
    options = PHRASES[key]
    return options.get(language, options["es"]).format(**values)
