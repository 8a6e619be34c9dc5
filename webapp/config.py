"""All configuration, read once from the environment (and `.env`), validated at start-up.

Every setting is documented in `.env.example`. Secrets are `SecretStr`, so they never appear in
reprs, logs or tracebacks; `masked()` is the only way they are shown (last 4 characters).
"""
from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import (AliasChoices, Field, SecretStr, ValidationError, ValidationInfo, field_validator,
                      model_validator)
from pydantic_settings import BaseSettings, SettingsConfigDict

from webapp.validation import message_of

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# [0-9], not \d (other scripts' digits), and \Z, not $ (which lets a trailing newline through)
WHATSAPP_ADDRESS = re.compile(r"^whatsapp:\+[1-9][0-9]{6,14}\Z")


API_PREFIX = "/api/v1/whatsapp"  # every route of the app lives under it
REPLY_TEMPLATE_FORMS = {
    "reply_template_content_sid": (re.compile(r"HX[0-9a-fA-F]{32}"), "a Twilio Content SID: HX and 32 hexadecimal digits"),
    "reply_template_name": (re.compile(r"[a-z0-9_]{1,512}"), "a WhatsApp template name: lower-case letters, digits and _"),
    "reply_template_language": (re.compile(r"[a-z]{2,3}(_[A-Z]{2})?"), "a WhatsApp template language code such as es, "
                                                                       "es_MX or en_US"),
}

class ConfigError(Exception):
    """Raised at start-up when a setting is missing or invalid; names the variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # Twilio
    twilio_account_sid: str = ""
    twilio_auth_token: SecretStr = SecretStr("")
    twilio_whatsapp_from: str = ""
    twilio_api_base: str = "https://api.twilio.com"
    twilio_content_api_base: str = "https://content.twilio.com"  # where quick-reply contents are created
    twilio_timeout_seconds: float = Field(10.0, gt=0, le=60)
    send_max_attempts: int = Field(6, ge=1, le=20)
    send_retry_base_seconds: float = Field(2.0, gt=0, le=60)
    send_retry_max_seconds: float = Field(300.0, gt=0, le=3600)
    public_base_url: str = ""
    validate_twilio_signature: bool = True
    trusted_proxy_hops: int = Field(0, ge=0, le=5)  # proxies in front that set X-Forwarded-*: trust that many

    # Meta's WhatsApp Cloud API
    meta_app_secret: SecretStr = SecretStr("")
    meta_verify_token: SecretStr = SecretStr("")
    meta_access_token: SecretStr = SecretStr("")
    meta_phone_number_id: str = ""
    meta_graph_api_base: str = "https://graph.facebook.com"
    meta_graph_api_version: str = "v23.0"
    meta_timeout_seconds: float = Field(10.0, gt=0, le=60)

    # Kapso (Meta's Cloud API through Kapso) and 360dialog
    kapso_webhook_secret: SecretStr = SecretStr("")
    kapso_api_key: SecretStr = SecretStr("")
    kapso_phone_number_id: str = ""
    kapso_api_base: str = "https://api.kapso.ai/meta/whatsapp/v24.0"
    d360_webhook_secret: SecretStr = SecretStr("")
    d360_api_key: SecretStr = SecretStr("")
    d360_api_base: str = "https://waba-v2.360dialog.io"

    # Storage
    mongodb_uri: str = "mongodb://127.0.0.1:27017/whatsapp_assistant?directConnection=true"
    mongodb_timeout_seconds: float = Field(3.0, gt=0, le=30)
    chroma_path: Path = PROJECT_ROOT / "var" / "chroma"
    chroma_url: str = ""
    chroma_collection: str = "knowledge"

    # Answering
    openai_api_key: SecretStr = SecretStr("")
    openai_base_url: str = ""
    openai_model: str = "gpt-4o-mini"
    openai_timeout_seconds: float = Field(20.0, gt=0, le=120)
    openai_max_prompt_tokens: int = Field(2000, ge=300, le=200_000)  # estimated; passages, then recent turns, fit
    embedder: Literal["e5", "openai"] = "e5"
    # EMBEDDER=openai: any OpenAI-compatible embedding server; unset, the chat model's (OPENAI_*)
    embedding_base_url: str = ""
    embedding_api_key: SecretStr = SecretStr("")
    embedding_model: str = Field("text-embedding-3-small", min_length=1,
                                 validation_alias=AliasChoices("embedding_model", "openai_embedding_model"))
    embedding_batch_size: int = Field(32, ge=1, le=2048)  # texts per request (TEI accepts 32 by default)
    embedding_timeout_seconds: float = Field(20.0, gt=0, le=120)
    company_name: str = "nuestra empresa"
    retrieval_k: int = Field(4, ge=1, le=20)
    relevance_threshold: float = Field(0.83, ge=0, le=1)
    covered_meaning_threshold: float = Field(0.96, ge=0, le=1)
    gap_similarity: float = Field(0.88, gt=0, lt=1)  # knowledge gaps: how alike questions of one group are
    knowledge_language: Literal["es", "en", "pt", "fr"] = "es"
    cite_sources: bool = False
    history_turns: int = Field(6, ge=0, le=50)
    embedder_threads: int = Field(0, ge=0, le=64)
    embedder_engines: int = Field(2, ge=1, le=8)  # local embedder: texts embedded at once, ~90 MB each

    # Worker
    worker_poll_seconds: float = Field(0.2, gt=0, le=10)
    worker_lease_seconds: float = Field(60.0, ge=5, le=3600)
    worker_threads: int = Field(4, ge=1, le=64)
    reply_debounce_seconds: float = Field(2.0, ge=0, le=30)
    worker_heartbeat_seconds: float = Field(15.0, gt=0, le=300)
    worker_stale_seconds: float = Field(60.0, gt=0, le=3600)  # /readyz: no heartbeat for this long = not ready

    retention_days: int = Field(0, ge=0, le=36500)  # messages, events and emptied conversations older go; 0 keeps all
    bot_config_refresh_seconds: float = Field(5.0, ge=0, le=300)  # how stale the bot settings may be, per process

    # Human handoff
    handoff_after_unanswered: int = Field(2, ge=0, le=20)  # answers in a row the bot could not give; 0: never
    handoff_timeout_minutes: float = Field(1440, gt=0, le=43200)  # the bot speaks again after this long
    handoff_webhook_url: str = ""
    handoff_webhook_secret: SecretStr = SecretStr("")

    # A person's reply after the customer's 24-hour window goes as this approved template first; the
    # reply follows when the customer answers. Twilio: a Content SID; the Cloud API: a template's name and language.
    reply_template_content_sid: str = ""
    reply_template_name: str = ""
    reply_template_language: str = ""

    # Per-answer feedback: "¿Te sirvió?" with 👍 / 👎 after every Nth answer of a conversation; 0: never
    feedback_every_n_answers: int = Field(0, ge=0, le=1000)

    # Chatwoot, the agents' inbox: every conversation mirrored to an API-channel inbox, agents answer from it
    chatwoot_base_url: str = ""
    chatwoot_account_id: int = Field(0, ge=0)
    chatwoot_inbox_id: int = Field(0, ge=0)
    chatwoot_api_token: SecretStr = SecretStr("")
    chatwoot_webhook_secret: SecretStr = SecretStr("")
    chatwoot_timeout_seconds: float = Field(10.0, gt=0, le=60)

    # HTTP surface
    admin_token: SecretStr = SecretStr("")
    rate_limit_per_wa_id: str = "10 per minute;60 per hour"
    rate_limit_admin_per_ip: str = "60 per minute"
    rate_limit_admin_failures_per_ip: str = "5 per minute;20 per hour"  # wrong admin tokens, then locked out
    rate_limit_storage_uri: str = ""
    max_inbound_chars: int = Field(4096, ge=1, le=65536)
    log_level: str = "INFO"
    log_format: Literal["json", "text"] = "json"

    @field_validator("twilio_whatsapp_from")
    @classmethod
    def _whatsapp_sender(cls, value: str) -> str:
        if value and not WHATSAPP_ADDRESS.match(value):
            raise ValueError("must look like whatsapp:+14155238886")
        return value

    @field_validator("twilio_account_sid")
    @classmethod
    def _account_sid(cls, value: str) -> str:
        if value and not re.fullmatch(r"AC[0-9a-fA-F]{32}", value):
            raise ValueError("must be 'AC' followed by 32 hex characters")
        return value

    @field_validator("meta_phone_number_id", "kapso_phone_number_id")
    @classmethod
    def _phone_number_id(cls, value: str) -> str:
        if value and not re.fullmatch(r"[0-9]{1,30}", value):
            raise ValueError("must be the phone number's id from the WhatsApp Manager: digits only")
        return value

    @field_validator("chatwoot_account_id", "chatwoot_inbox_id", mode="before")
    @classmethod
    def _unset_id(cls, value):
        return 0 if value == "" else value  # left empty, as in .env.example: not set

    @field_validator("meta_graph_api_version")
    @classmethod
    def _graph_version(cls, value: str) -> str:
        if not re.fullmatch(r"v[0-9]{1,3}\.[0-9]{1,3}", value):
            raise ValueError("must look like v23.0")
        return value

    @field_validator("twilio_api_base", "twilio_content_api_base", "public_base_url", "openai_base_url",
                     "embedding_base_url", "chroma_url", "handoff_webhook_url", "meta_graph_api_base",
                     "kapso_api_base", "d360_api_base", "chatwoot_base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if value and urlsplit(value).scheme not in ("http", "https"):
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/")

    @field_validator(*REPLY_TEMPLATE_FORMS)
    @classmethod
    def _reply_template(cls, value: str, info: ValidationInfo) -> str:
        pattern, form = REPLY_TEMPLATE_FORMS[info.field_name]
        if value and not pattern.fullmatch(value):
            raise ValueError(f"must be {form}")
        return value

    @model_validator(mode="after")
    def _reply_template_complete(self) -> "Settings":
        if bool(self.reply_template_name) != bool(self.reply_template_language):
            raise ValueError("REPLY_TEMPLATE_NAME and REPLY_TEMPLATE_LANGUAGE go together (the template's name and "
                             "the language it was approved in)")
        return self

    @field_validator("mongodb_uri", "rate_limit_storage_uri")
    @classmethod
    def _storage_uri(cls, value: str) -> str:
        if value and "://" not in value:
            raise ValueError("must be a URI such as mongodb://host:27017/db")
        return value

    @field_validator("rate_limit_per_wa_id", "rate_limit_admin_per_ip", "rate_limit_admin_failures_per_ip")
    @classmethod
    def _rate_limits(cls, value: str) -> str:
        from limits import parse_many

        try:
            parse_many(value)
        except ValueError:
            raise ValueError("must be flask-limiter limits such as '10 per minute;60 per hour'") from None
        return value

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        if value.upper() not in logging.getLevelNamesMapping():
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return value.upper()

    @model_validator(mode="after")
    def _meta_settings_complete(self) -> "Settings":
        """Half a Meta configuration is a mistake: name what is missing."""
        given = {name: getattr(self, name).get_secret_value()
                 for name in ("meta_app_secret", "meta_verify_token", "meta_access_token")}
        if any(given.values()) or self.meta_phone_number_id:
            missing = [name.upper() for name in ("meta_app_secret", "meta_verify_token") if not given[name]]
            if missing:
                raise ValueError(f"{' and '.join(missing)} required for Meta's WhatsApp Cloud API (the webhook "
                                 "is checked with them)")
        return self

    @model_validator(mode="after")
    def _keys_have_webhooks(self) -> "Settings":
        """A provider's API key without its webhook secret would send replies to messages that cannot come in."""
        for key, secret in (("kapso_api_key", "kapso_webhook_secret"), ("d360_api_key", "d360_webhook_secret")):
            if getattr(self, key).get_secret_value() and not getattr(self, secret).get_secret_value():
                raise ValueError(f"{secret.upper()} required with {key.upper()} (the webhook is checked with it)")
        return self

    @model_validator(mode="after")
    def _chatwoot_settings_complete(self) -> "Settings":
        """Chatwoot is on with all five settings, off with none: name what half a configuration lacks."""
        given = {"chatwoot_base_url": self.chatwoot_base_url, "chatwoot_account_id": self.chatwoot_account_id,
                 "chatwoot_inbox_id": self.chatwoot_inbox_id,
                 "chatwoot_api_token": self.chatwoot_api_token.get_secret_value(),
                 "chatwoot_webhook_secret": self.chatwoot_webhook_secret.get_secret_value()}
        missing = [name.upper() for name, value in given.items() if not value]
        if missing and len(missing) < len(given):
            raise ValueError(f"{', '.join(missing)} required for Chatwoot (see README, Connect Chatwoot)")
        return self

    @property
    def chatwoot_on(self) -> bool:
        return bool(self.chatwoot_base_url)

    @model_validator(mode="after")
    def _embedding_server_reachable(self) -> "Settings":
        if self.embedder == "openai" and not (self.embedding_base_url or self.embedding_credentials[0]):
            raise ValueError("EMBEDDER=openai needs EMBEDDING_BASE_URL (your embedding server) or an API key for "
                             "OpenAI's (EMBEDDING_API_KEY or OPENAI_API_KEY)")
        return self

    @property
    def embedding_credentials(self) -> tuple[str, str]:
        """(API key, base URL) of the embedding server. Without EMBEDDING_BASE_URL it is the chat
        model's server, with its key; a separate server never gets the chat model's key."""
        if self.embedding_base_url:
            return self.embedding_api_key.get_secret_value(), self.embedding_base_url
        return (self.embedding_api_key.get_secret_value() or self.openai_api_key.get_secret_value(),
                self.openai_base_url)

    @model_validator(mode="after")
    def _a_channel_is_on(self) -> "Settings":
        if not (self.twilio_receives or self.meta_receives or self.kapso_receives or self.d360_receives):
            raise ValueError(
                "no channel is configured: set TWILIO_AUTH_TOKEN (the key Twilio signs webhooks with), "
                "META_APP_SECRET and META_VERIFY_TOKEN (Meta's WhatsApp Cloud API), KAPSO_WEBHOOK_SECRET "
                "(Kapso) or D360_WEBHOOK_SECRET (360dialog)"
            )
        return self

    @model_validator(mode="after")
    def _sending_needs_public_url(self) -> "Settings":
        # Without it the signed URL would be rebuilt from the request's Host, which the caller chooses.
        if self.twilio_sends and not self.public_base_url:
            raise ValueError(
                "PUBLIC_BASE_URL is required when Twilio credentials are set: it is the URL Twilio's "
                "signatures are checked against (the base of the webhook URL in the Twilio console, "
                "e.g. https://bot.example.com)"
            )
        return self

    @property
    def status_callback_url(self) -> str:
        """Where Twilio reports delivery of our messages; none without a public URL to reach us."""
        return f"{self.public_base_url}{API_PREFIX}/status" if self.public_base_url else ""

    @property
    def twilio_receives(self) -> bool:
        """Twilio's webhooks are served when their signatures can be checked (or the check is off)."""
        return bool(self.twilio_auth_token.get_secret_value()) or not self.validate_twilio_signature

    @property
    def meta_receives(self) -> bool:
        """Meta's webhook is served when its signature and verification can be checked."""
        return bool(self.meta_app_secret.get_secret_value() and self.meta_verify_token.get_secret_value())

    @property
    def meta_sends(self) -> bool:
        """Replies go out through the Graph API when the access token is set too; else dry-run."""
        return self.meta_receives and bool(self.meta_access_token.get_secret_value())

    @property
    def kapso_receives(self) -> bool:
        return bool(self.kapso_webhook_secret.get_secret_value())

    @property
    def kapso_sends(self) -> bool:
        return self.kapso_receives and bool(self.kapso_api_key.get_secret_value())

    @property
    def d360_receives(self) -> bool:
        return bool(self.d360_webhook_secret.get_secret_value())

    @property
    def d360_sends(self) -> bool:
        return self.d360_receives and bool(self.d360_api_key.get_secret_value())

    @property
    def twilio_sends(self) -> bool:
        """Replies go out through Twilio only when all three credentials are set; else dry-run."""
        return bool(
            self.twilio_account_sid
            and self.twilio_auth_token.get_secret_value()
            and self.twilio_whatsapp_from
        )

    @property
    def uses_llm(self) -> bool:
        return bool(self.openai_api_key.get_secret_value())

    @property
    def limiter_storage_uri(self) -> str:
        return self.rate_limit_storage_uri or self.mongodb_uri


def masked(secret: SecretStr | str) -> str:
    """Show only the last 4 characters of a secret, e.g. '****abcd'."""
    value = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
    if not value:
        return ""
    return "****" + value[-4:] if len(value) > 8 else "****"


def load_settings(**overrides) -> Settings:
    """Read and validate the settings; a bad value raises ConfigError naming the variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'_'.join(str(p) for p in err['loc']).upper() or 'settings'}: {message_of(err)}"
            for err in exc.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from None
