"""Bot settings kept in the database, changed by admins at run time (`GET`/`PUT /api/v1/bot/config`):
who the bot speaks for and how, which model writes its answers, how long they may be, what it
says first, and when a person is there to take over.

Each process reads them at most every REFRESH_SECONDS, so a change reaches every worker within
that time, with no restart. Until an admin saves any, the defaults come from the environment
(COMPANY_NAME, OPENAI_MODEL). Secrets never live here.
"""
from __future__ import annotations

import re
import threading
import time
from datetime import datetime, time as clock
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from rag.answer import Persona
from webapp.validation import validated
from webapp.formatting import MAX_REPLY_CHARS

REFRESH_SECONDS = 5.0
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HOURS = re.compile(r"([01]\d|2[0-3]):[0-5]\d-(([01]\d|2[0-3]):[0-5]\d|24:00)")


class BusinessHours(BaseModel):
    """When a person is there: "HH:MM-HH:MM" per day in `timezone`; a day not named is closed."""

    model_config = ConfigDict(extra="forbid")

    timezone: str = "Europe/Madrid"
    days: dict[str, str] = Field(default_factory=dict)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("must be an IANA time zone such as Europe/Madrid") from None
        return value

    @field_validator("days")
    @classmethod
    def _opening_hours(cls, value: dict[str, str]) -> dict[str, str]:
        for day, hours in value.items():
            if day not in DAYS:
                raise ValueError(f"days are named {', '.join(DAYS)}, not {day!r}")
            match = HOURS.fullmatch(hours)
            if not match or hours[:5] >= hours[6:]:
                raise ValueError(f"{day}: hours must look like 09:00-18:00, opening before closing")
        return value

    def open_at(self, moment: datetime) -> bool:
        local = moment.astimezone(ZoneInfo(self.timezone))
        hours = self.days.get(DAYS[local.weekday()])
        return bool(hours) and _clock(hours[:5]) <= local.time() < _clock(hours[6:])


def _clock(hours_minutes: str) -> clock:
    hours, minutes = int(hours_minutes[:2]), int(hours_minutes[3:])
    return clock.max if hours == 24 else clock(hours, minutes)


class BotConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    company_name: str = Field(min_length=1, max_length=100)
    system_prompt: str = Field("", max_length=4000)  # replaces the default rules; "" keeps them
    tone: str = Field("", max_length=200)  # "cercano, tutea al cliente"
    model: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:/-]+$")
    temperature: float = Field(0.2, ge=0, le=2)
    max_answer_chars: int = Field(MAX_REPLY_CHARS, ge=200, le=MAX_REPLY_CHARS)
    greeting: str = Field("", max_length=1000)  # said before the answer to a conversation's first message
    out_of_hours_message: str = Field("", max_length=1000)  # said instead of the handoff notice, out of hours
    business_hours: BusinessHours | None = None  # None: a person is always there

    @classmethod
    def defaults(cls, settings) -> BotConfig:
        return cls(company_name=settings.company_name, model=settings.openai_model)

    def out_of_hours(self, moment: datetime) -> bool:
        return self.business_hours is not None and not self.business_hours.open_at(moment)

    def persona(self) -> Persona:
        """What the assistant needs of these settings."""
        return Persona(self.company_name, self.system_prompt, self.tone, self.model, self.temperature)


def updated(current: BotConfig, changes: dict) -> BotConfig:
    """`current` with `changes` (any of its fields) applied and the whole validated (InvalidInput
    naming each bad field)."""
    return validated(BotConfig, {**current.model_dump(), **changes})


class ChangedMeanwhile(Exception):
    """The settings were saved by someone else since the version the change was made to."""


def save_changes(repository, settings, changes: dict, now: datetime, expected_version: int | None = None) -> BotConfig:
    """Apply `changes` to the stored settings and save them: InvalidInput if the result is not
    valid, ChangedMeanwhile if they are no longer at `expected_version` (when given); nothing is
    saved then, nor when nothing changes."""
    stored = repository.get()
    config = updated(stored_config(stored, settings), changes)
    if stored is not None and config == stored_config(stored, settings):
        return config
    if repository.save(config.model_dump(), now, expected_version) is None:
        raise ChangedMeanwhile()
    return config


def stored_config(stored: dict | None, settings) -> BotConfig:
    """The settings as saved (a field this version no longer has is left out), or the defaults."""
    if not stored:
        return BotConfig.defaults(settings)
    return BotConfig.model_validate({k: v for k, v in stored.items() if k in BotConfig.model_fields})


class BotConfigReader:
    """The current settings as stored (`webapp.db.bot_config`), re-read at most every
    REFRESH_SECONDS; shared by a process's threads."""

    def __init__(self, repository, settings, refresh_seconds: float = REFRESH_SECONDS):
        self.repository = repository
        self.settings = settings
        self.refresh_seconds = refresh_seconds
        self._lock = threading.Lock()
        self._config: BotConfig | None = None
        self._read_at = float("-inf")

    def current(self) -> BotConfig:
        with self._lock:
            if time.monotonic() - self._read_at >= self.refresh_seconds:
                self._config = stored_config(self.repository.get(), self.settings)
                self._read_at = time.monotonic()
            return self._config
