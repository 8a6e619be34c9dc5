"""The bot settings (`webapp.bot_config`, what `PUT /api/v1/bot/config` takes) as a form, with
each invalid field's message beside it; nothing is saved unless the whole is valid."""
from __future__ import annotations

from datetime import datetime, timezone

from flask import Blueprint, redirect, render_template, request, url_for

from webapp.bot_config import DAYS, BotConfig, ChangedMeanwhile, save_changes, stored_config
from webapp.console.session import signed_in
from webapp.console.text import t
from webapp.services import services
from webapp.validation import InvalidInput

bp = Blueprint("console_settings", __name__, url_prefix="/console")
TEXT_FIELDS = ("company_name", "tone", "model", "greeting", "out_of_hours_message", "system_prompt")
NUMBER_FIELDS = {"temperature": float, "max_answer_chars": int}


@bp.get("/settings")
@signed_in
def settings():
    app = services()
    config = stored_config(app.store.bot_config.get(), app.settings)
    return _page(config.model_dump(), app.store.bot_config.meta()["version"],
                 notice=t("saved") if request.args.get("done") == "saved" else "")


@bp.post("/settings")
@signed_in
def save():
    changes, version = _changes(request.form), _form_version()
    try:
        save_changes(services().store.bot_config, services().settings, changes, datetime.now(timezone.utc),
                     expected_version=version)
    except InvalidInput as invalid:
        problems = {problem["field"]: problem["error"] for problem in invalid.problems}
        return _page(changes, version, problems=problems, error=t("fix_fields"), status=400)
    except ChangedMeanwhile:
        return _page(changes, version, error=t("changed_meanwhile"), status=409)
    return redirect(url_for("console_settings.settings", done="saved"), 303)


def _changes(form) -> dict:
    """The form's fields as the settings' types; a number that does not parse is left as the text
    given, for the validation to name its field. Browsers send a text box's line breaks as CRLF:
    they are kept as the LF they were."""
    changes = {name: form.get(name, "").replace("\r\n", "\n") for name in TEXT_FIELDS}
    for name, kind in NUMBER_FIELDS.items():
        given = form.get(name, "").strip()
        try:
            changes[name] = kind(given)
        except ValueError:
            changes[name] = given
    changes["business_hours"] = None
    if form.get("business_hours_on"):
        days = {day: form.get(f"hours_{day}", "").strip() for day in DAYS}
        changes["business_hours"] = {"timezone": form.get("timezone", "").strip(),
                                     "days": {day: hours for day, hours in days.items() if hours}}
    return changes


def _form_version() -> int:
    """The version of the settings the form was filled in from (-1, matching none, if it is not one)."""
    given = request.form.get("version", "")
    return int(given) if given.isascii() and given.isdigit() and len(given) < 10 else -1


def _page(values: dict, version: int, problems: dict | None = None, notice: str = "", error: str = "",
          status: int = 200):
    """The form with `values`, made from the settings at `version`."""
    problems = problems or {}
    return render_template("console/settings.html", values=values, version=version, days=DAYS,
                           hours=values.get("business_hours") or {}, problems=problems, limits=_limits(),
                           hours_invalid=any(field.startswith("business_hours") for field in problems),
                           notice=notice, error=error), status


def _limits() -> dict:
    """Each text field's most characters, from the settings' own model."""
    return {name: next((m.max_length for m in field.metadata if hasattr(m, "max_length")), None)
            for name, field in BotConfig.model_fields.items()}
