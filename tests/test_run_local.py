"""`make run` (scripts/run_local.py) works on a fresh checkout: the local .env gets a generated secret
for every channel's webhook and for the ops routes, and a developer's own values are never replaced."""
from __future__ import annotations

import pytest
from dotenv import dotenv_values

from scripts.run_local import LOCAL_SECRETS, ensure_local_env
from webapp.config import load_settings

EVERY_SECRET = {"TWILIO_AUTH_TOKEN", "META_APP_SECRET", "META_VERIFY_TOKEN", "KAPSO_WEBHOOK_SECRET",
                "D360_WEBHOOK_SECRET", "ADMIN_TOKEN"}


@pytest.fixture
def env_file(tmp_path, monkeypatch):
    for name in LOCAL_SECRETS:
        monkeypatch.delenv(name, raising=False)  # a value in the environment is not written to .env
    return tmp_path / ".env"


def test_every_channels_secret_and_the_admin_token_are_generated_and_all_different(env_file):
    ensure_local_env(env_file)

    values = dotenv_values(env_file)
    assert set(LOCAL_SECRETS) == EVERY_SECRET and set(values) == EVERY_SECRET
    assert all(len(values[name]) >= 32 for name in EVERY_SECRET)
    assert len(set(values.values())) == len(EVERY_SECRET)


def test_a_second_run_keeps_the_values_already_there(env_file):
    env_file.write_text("TWILIO_AUTH_TOKEN=my-real-twilio-token\nCOMPANY_NAME=Fibra Clara\n")
    ensure_local_env(env_file)
    first = dotenv_values(env_file)

    ensure_local_env(env_file)

    assert dotenv_values(env_file) == first
    assert first["TWILIO_AUTH_TOKEN"] == "my-real-twilio-token" and first["COMPANY_NAME"] == "Fibra Clara"


def test_a_secret_set_in_the_environment_is_not_written(env_file, monkeypatch):
    monkeypatch.setenv("ADMIN_TOKEN", "from-the-environment-0123")
    ensure_local_env(env_file)
    assert "ADMIN_TOKEN" not in dotenv_values(env_file)


def test_the_generated_env_serves_every_channels_webhook(env_file):
    ensure_local_env(env_file)

    settings = load_settings(_env_file=env_file)

    assert settings.twilio_receives and settings.meta_receives and settings.kapso_receives and settings.d360_receives
    assert settings.admin_token.get_secret_value() == dotenv_values(env_file)["ADMIN_TOKEN"]
