"""Configuration is validated at start-up, names the bad variable, and never shows a secret."""
from __future__ import annotations

import logging

import pytest

from webapp import create_app
from webapp.config import ConfigError, load_settings, masked


@pytest.mark.parametrize(
    ("override", "variable"),
    [
        ({"twilio_whatsapp_from": "+14155238886"}, "TWILIO_WHATSAPP_FROM"),
        ({"twilio_account_sid": "ACnothex"}, "TWILIO_ACCOUNT_SID"),
        ({"twilio_api_base": "api.twilio.com"}, "TWILIO_API_BASE"),
        ({"twilio_content_api_base": "content.twilio.com"}, "TWILIO_CONTENT_API_BASE"),
        ({"reply_template_content_sid": "HX123"}, "REPLY_TEMPLATE_CONTENT_SID"),
        ({"reply_template_name": "Respuesta Pendiente", "reply_template_language": "es"}, "REPLY_TEMPLATE_NAME"),
        ({"reply_template_name": "respuesta", "reply_template_language": "spanish"}, "REPLY_TEMPLATE_LANGUAGE"),
        ({"reply_template_name": "respuesta"}, "REPLY_TEMPLATE_NAME and REPLY_TEMPLATE_LANGUAGE go together"),
        ({"feedback_every_n_answers": -1}, "FEEDBACK_EVERY_N_ANSWERS"),
        ({"mongodb_uri": "localhost:27017"}, "MONGODB_URI"),
        ({"retrieval_k": 0}, "RETRIEVAL_K"),
        ({"log_level": "CHATTY"}, "LOG_LEVEL"),
        ({"twilio_auth_token": ""}, "TWILIO_AUTH_TOKEN"),
        ({"rate_limit_per_wa_id": "lots per minute"}, "RATE_LIMIT_PER_WA_ID"),
        ({"kapso_api_key": "kapso-key-0123"}, "KAPSO_WEBHOOK_SECRET required with KAPSO_API_KEY"),
        ({"d360_api_key": "d360-key-0123"}, "D360_WEBHOOK_SECRET required with D360_API_KEY"),
        ({"meta_graph_api_version": "23.0"}, "META_GRAPH_API_VERSION"),
        ({"meta_graph_api_version": "v23"}, "META_GRAPH_API_VERSION"),
    ],
)
def test_a_bad_setting_is_named(override, variable):
    with pytest.raises(ConfigError, match=variable):
        load_settings(_env_file=None, **{"twilio_auth_token": "t" * 32, **override})


def test_half_a_meta_configuration_names_what_is_missing():
    with pytest.raises(ConfigError, match="META_APP_SECRET and META_VERIFY_TOKEN required") as error:
        load_settings(_env_file=None, twilio_auth_token="t" * 32, meta_access_token="EAAG-access-token-1234")
    assert "EAAG-access-token-1234" not in str(error.value)


@pytest.mark.parametrize("phone_number_id", ["+1 555 078 3881", "10654035224292a", "1" * 31])
def test_a_meta_phone_number_id_that_is_not_digits_is_named(phone_number_id):
    meta = {"meta_app_secret": "s" * 32, "meta_verify_token": "v" * 16, "meta_access_token": "EAAG" + "a" * 20}
    with pytest.raises(ConfigError, match="META_PHONE_NUMBER_ID: .*digits only"):
        load_settings(_env_file=None, **meta, meta_phone_number_id=phone_number_id)


def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "from-the-environment-1234")
    monkeypatch.setenv("RETRIEVAL_K", "7")
    monkeypatch.setenv("VALIDATE_TWILIO_SIGNATURE", "false")

    settings = load_settings(_env_file=None)

    assert settings.retrieval_k == 7 and settings.validate_twilio_signature is False
    assert settings.twilio_auth_token.get_secret_value() == "from-the-environment-1234"


def test_secrets_never_appear_in_reprs_or_errors():
    secret = "super-secret-token-value-9876"
    settings = load_settings(_env_file=None, twilio_auth_token=secret, openai_api_key=secret, admin_token=secret)
    assert secret not in repr(settings) and secret not in str(settings.model_dump())
    with pytest.raises(ConfigError) as error:
        load_settings(_env_file=None, twilio_auth_token=secret, retrieval_k=-1)
    assert secret not in str(error.value)


def test_masked_shows_only_the_last_four():
    assert masked("abcdefghij1234") == "****1234"
    assert masked("short") == "****"
    assert masked("") == ""


def test_dry_run_and_disabled_signature_warn_at_every_start(settings_overrides, caplog):
    with caplog.at_level(logging.WARNING):
        create_app(load_settings(**dict(settings_overrides, validate_twilio_signature=False, twilio_account_sid="")))
    assert "VALIDATE_TWILIO_SIGNATURE is off" in caplog.text
    assert "DRY-RUN" in caplog.text


def test_env_example_documents_every_setting():
    import re

    from tests.conftest import ROOT
    from webapp.config import Settings

    listed = set(re.findall(r"^([A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), flags=re.MULTILINE))
    assert {name.upper() for name in Settings.model_fields} <= listed
