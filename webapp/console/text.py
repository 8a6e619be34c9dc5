"""The console's words, in Spanish and English. The language is the one the person chose (a
cookie set by the switch in the header), else the browser's preference, else Spanish."""
from __future__ import annotations

from flask import request

LANGUAGES = ("es", "en")
LANGUAGE_COOKIE = "console_lang"

TEXT = {
    "es": {
        "console": "Consola", "inbox": "Bandeja", "dashboard": "Panel", "knowledge": "Conocimiento",
        "settings": "Ajustes", "sign_in": "Entrar", "sign_out": "Salir", "admin_token": "Token de administración",
        "sign_in_help": "Pega el ADMIN_TOKEN de este despliegue. No se guarda en el navegador: se cambia por una "
                        "sesión que caduca en 8 horas o al salir.",
        "wrong_token": "Ese token no es el de administración.",
        "csrf_refused": "El formulario no llevaba su código de seguridad (o ha caducado). Recarga la página y vuelve "
                        "a intentarlo.",
        "console_disabled": "La consola está desactivada: define ADMIN_TOKEN para activarla.",
        "locked_out": "Demasiados tokens incorrectos desde esta dirección. Espera e inténtalo de nuevo.",
        "too_many_requests": "Demasiadas peticiones desde esta dirección. Espera un momento.",
        "not_found": "No existe esa conversación.",
        "error": "Error", "back": "Volver",
        "waiting_for_person": "Esperando a una persona", "waiting_for": "espera desde hace {time}",
        "person_replied": "respondida por una persona", "no_waiting": "Nadie espera a una persona.",
        "conversations": "Conversaciones", "status": "Estado", "channel": "Canal", "search": "Buscar",
        "search_placeholder": "número o nombre", "any": "Todos", "filter": "Filtrar",
        "status_open": "abierta", "status_handoff": "con una persona", "status_closed": "cerrada",
        "started": "Empezó",
        "no_conversations": "No hay conversaciones con esos filtros.",
        "previous": "Anterior", "next": "Siguiente", "page": "página {page}",
        "no_more": "No hay más conversaciones.", "first_page": "Primera página",
        "customer_role": "Cliente", "assistant_role": "Asistente", "agent_role": "Persona",
        "sources": "Fuentes", "reply_as_person": "Responder como persona", "send_reply": "Enviar respuesta",
        "release": "Devolver al asistente", "close": "Cerrar conversación",
        "window_open": "Ventana de 24 h abierta: se puede responder libremente hasta {until}.",
        "window_template": "Ventana de 24 h cerrada: una respuesta se guarda y se envía antes la plantilla "
                           "aprobada; sale cuando el cliente conteste.",
        "window_closed": "Ventana de 24 h cerrada y sin plantilla aprobada: WhatsApp no dejaría enviar una "
                         "respuesta.",
        "window_never": "El cliente no ha escrito en esta conversación: WhatsApp no deja escribirle primero.",
        "reaction": "reacción", "no_dry_run": "No existe esa prueba (se guardan un día).",
        "dry_run_late": "Todavía sin respuesta: ningún worker la ha contestado a tiempo.",
        "reply_queued": "Respuesta en cola: se enviará en unos segundos.",
        "released": "La conversación vuelve al asistente.", "not_in_handoff": "No estaba con una persona.",
        "closed_now": "Conversación cerrada.", "already_closed": "Ya estaba cerrada.",
        "refresh": "Actualizar", "updates_every": "Se actualiza sola cada pocos segundos.",
        "held": "retenida hasta que el cliente conteste", "media": "adjunto", "location": "ubicación",
        "handoff_since": "Con una persona desde {time}", "outcome": "resultado",
        "index": "Índice", "documents": "Documentos", "chunks": "Fragmentos", "embedder": "Modelo de embeddings",
        "last_ingest": "Última carga", "no_worker": "Ningún proceso worker da señales de vida: no se puede "
                                                    "leer el índice ni probar preguntas.",
        "gaps": "Preguntas sin respuesta", "gaps_help": "Lo que los clientes preguntaron y el asistente no supo "
                                                        "responder (o recibió 👎) en los últimos {days} días.",
        "no_gaps": "No hay preguntas sin respuesta.", "times": "veces", "customers": "clientes",
        "unknown": "sin respuesta", "disliked": "👎",
        "ask": "Probar una pregunta", "ask_help": "Prueba seca: el asistente responde aquí, no se envía nada "
                                                  "a nadie.", "question": "Pregunta", "ask_button": "Preguntar",
        "thinking": "El asistente está pensando…", "answer": "Respuesta", "score": "puntuación",
        "used": "usada en la respuesta",
        "dry_run_failed": "La prueba falló: {error}", "question_required": "Escribe una pregunta (hasta {most} "
                                                                          "caracteres).",
        "messages_per_day": "Mensajes por día", "inbound": "recibidos", "outbound": "enviados",
        "outcomes_per_day": "Respuestas por resultado", "answered": "respondidas", "latency": "Tiempo de respuesta",
        "p50": "mediana", "p95": "p95", "seconds": "s", "handoffs": "Traspasos a persona", "leads": "Contactos",
        "ratings": "Valoraciones", "thumbs_up": "👍", "thumbs_down": "👎", "last_7_days": "Últimos 7 días",
        "open_now": "abiertas", "in_handoff": "con una persona",
        "bot_settings": "Ajustes del asistente", "save": "Guardar", "saved": "Ajustes guardados.",
        "changed_meanwhile": "Alguien ha guardado los ajustes mientras tanto: no se ha guardado nada. Recarga la "
                             "página para ver los suyos.",
        "fix_fields": "Revisa los campos marcados.", "version": "versión {version}",
        "company_name": "Nombre de la empresa", "system_prompt": "Instrucciones (vacío: las de serie)",
        "tone": "Tono", "model": "Modelo", "temperature": "Temperatura",
        "max_answer_chars": "Máximo de caracteres por respuesta", "greeting": "Saludo",
        "out_of_hours_message": "Mensaje fuera de horario", "business_hours": "Horario de atención",
        "business_hours_on": "Hay un horario (si no, siempre hay alguien)", "timezone": "Zona horaria",
        "day_mon": "lunes", "day_tue": "martes", "day_wed": "miércoles", "day_thu": "jueves", "day_fri": "viernes",
        "day_sat": "sábado", "day_sun": "domingo", "hours_help": "HH:MM-HH:MM, vacío = cerrado",
        "minutes": "{n} min", "hours": "{n} h", "days": "{n} d",
    },
    "en": {
        "console": "Console", "inbox": "Inbox", "dashboard": "Dashboard", "knowledge": "Knowledge",
        "settings": "Settings", "sign_in": "Sign in", "sign_out": "Sign out", "admin_token": "Admin token",
        "sign_in_help": "Paste this deployment's ADMIN_TOKEN. It is not kept in the browser: it is exchanged for a "
                        "session that ends after 8 hours or when you sign out.",
        "wrong_token": "That is not the admin token.",
        "csrf_refused": "The form did not carry its security code (or it expired). Reload the page and try again.",
        "console_disabled": "The console is disabled: set ADMIN_TOKEN to enable it.",
        "locked_out": "Too many wrong tokens from this address. Wait and try again.",
        "too_many_requests": "Too many requests from this address. Wait a moment.",
        "not_found": "There is no such conversation.",
        "error": "Error", "back": "Back",
        "waiting_for_person": "Waiting for a person", "waiting_for": "waiting for {time}",
        "person_replied": "a person replied", "no_waiting": "Nobody is waiting for a person.",
        "conversations": "Conversations", "status": "Status", "channel": "Channel", "search": "Search",
        "search_placeholder": "number or name", "any": "Any", "filter": "Filter",
        "status_open": "open", "status_handoff": "with a person", "status_closed": "closed",
        "started": "Started",
        "no_conversations": "No conversations match these filters.",
        "previous": "Previous", "next": "Next", "page": "page {page}",
        "no_more": "No more conversations.", "first_page": "First page",
        "customer_role": "Customer", "assistant_role": "Assistant", "agent_role": "Person",
        "sources": "Sources", "reply_as_person": "Reply as a person", "send_reply": "Send reply",
        "release": "Give back to the assistant", "close": "Close conversation",
        "window_open": "24-hour window open: free-form replies until {until}.",
        "window_template": "24-hour window closed: a reply is held and the approved template goes first; the "
                           "reply follows when the customer answers.",
        "window_closed": "24-hour window closed and no approved template: WhatsApp would refuse a reply.",
        "window_never": "The customer has not written in this conversation: WhatsApp does not let you write "
                        "first.",
        "reaction": "reaction", "no_dry_run": "There is no such dry run (they are kept a day).",
        "dry_run_late": "No answer yet: no worker has answered it in time.",
        "reply_queued": "Reply queued: it goes out in a few seconds.",
        "released": "The conversation is back with the assistant.", "not_in_handoff": "It was not with a person.",
        "closed_now": "Conversation closed.", "already_closed": "It was closed already.",
        "refresh": "Refresh", "updates_every": "Updates by itself every few seconds.",
        "held": "held until the customer answers", "media": "attachment", "location": "location",
        "handoff_since": "With a person since {time}", "outcome": "outcome",
        "index": "Index", "documents": "Documents", "chunks": "Chunks", "embedder": "Embedder",
        "last_ingest": "Last ingest", "no_worker": "No worker process is alive: the index cannot be read nor "
                                                   "questions tried.",
        "gaps": "Unanswered questions", "gaps_help": "What customers asked that the assistant could not answer (or "
                                                     "that got a 👎) in the last {days} days.",
        "no_gaps": "No unanswered questions.", "times": "times", "customers": "customers",
        "unknown": "unanswered", "disliked": "👎",
        "ask": "Try a question", "ask_help": "A dry run: the assistant answers here, nothing is sent to anyone.",
        "question": "Question", "ask_button": "Ask",
        "thinking": "The assistant is thinking…", "answer": "Answer", "score": "score", "used": "used in the answer",
        "dry_run_failed": "The dry run failed: {error}", "question_required": "Write a question (up to {most} "
                                                                             "characters).",
        "messages_per_day": "Messages per day", "inbound": "received", "outbound": "sent",
        "outcomes_per_day": "Answers by outcome", "answered": "answered", "latency": "Reply time",
        "p50": "median", "p95": "p95", "seconds": "s", "handoffs": "Handoffs to a person", "leads": "Leads",
        "ratings": "Ratings", "thumbs_up": "👍", "thumbs_down": "👎", "last_7_days": "Last 7 days",
        "open_now": "open", "in_handoff": "with a person",
        "bot_settings": "Assistant settings", "save": "Save", "saved": "Settings saved.",
        "changed_meanwhile": "Someone saved the settings meanwhile: nothing was saved. Reload the page to see theirs.",
        "fix_fields": "Check the fields marked.", "version": "version {version}",
        "company_name": "Company name", "system_prompt": "Instructions (empty: the built-in ones)",
        "tone": "Tone", "model": "Model", "temperature": "Temperature",
        "max_answer_chars": "Most characters per answer", "greeting": "Greeting",
        "out_of_hours_message": "Out-of-hours message", "business_hours": "Business hours",
        "business_hours_on": "There are business hours (otherwise someone is always there)", "timezone": "Time zone",
        "day_mon": "Monday", "day_tue": "Tuesday", "day_wed": "Wednesday", "day_thu": "Thursday", "day_fri": "Friday",
        "day_sat": "Saturday", "day_sun": "Sunday", "hours_help": "HH:MM-HH:MM, empty = closed",
        "minutes": "{n} min", "hours": "{n} h", "days": "{n} d",
    },
}


def language() -> str:
    chosen = request.cookies.get(LANGUAGE_COOKIE)
    if chosen in LANGUAGES:
        return chosen
    return request.accept_languages.best_match(LANGUAGES, default=LANGUAGES[0])


def t(key: str, **values) -> str:
    text = TEXT[language()][key]
    return text.format(**values) if values else text


def duration(seconds: float) -> str:
    """A wait as a person reads it: 12 min, 3 h, 2 d."""
    minutes = max(0, int(seconds // 60))
    if minutes < 60:
        return t("minutes", n=minutes)
    if minutes < 48 * 60:
        return t("hours", n=minutes // 60)
    return t("days", n=minutes // (24 * 60))
