"""The dashboard: the admin API's stats (`webapp.admin.stats`) as figures and, for the last 7 days,
charts drawn as inline SVG (`charts`): messages, answers by outcome, reply time, handoffs and
leads, ratings."""
from __future__ import annotations

from datetime import datetime, timezone

from flask import Blueprint, render_template
from markupsafe import Markup

from webapp.admin import stats
from webapp.console.charts import bar_chart, line_chart
from webapp.console.session import signed_in
from webapp.console.text import t
from webapp.services import services

bp = Blueprint("console_dashboard", __name__, url_prefix="/console")


@bp.get("/dashboard")
@signed_in
def dashboard():
    figures = stats(services().store, datetime.now(timezone.utc))
    return render_template("console/dashboard.html", figures=figures, charts=_charts(figures["days"][::-1]))


def _charts(days: list[dict]) -> list[tuple[str, Markup]]:
    """Each chart's title and drawing, oldest day first."""
    labels = [day["day"][5:] for day in days]

    def series(*names: tuple[str, str]) -> list[tuple[str, list]]:
        return [(t(label), [day[field] for day in days]) for field, label in names]

    def bars(title: str, *names: tuple[str, str], stacked: bool = False) -> tuple[str, Markup]:
        return title, bar_chart(labels, series(*names), stacked=stacked, title=title)

    latency = t("latency")
    return [
        bars(t("messages_per_day"), ("inbound", "inbound"), ("outbound", "outbound")),
        bars(t("outcomes_per_day"), ("answered", "answered"), ("unknown", "unknown"), stacked=True),
        (latency, line_chart(labels, series(("reply_seconds_p50", "p50"), ("reply_seconds_p95", "p95")),
                             title=latency, unit=t("seconds"))),
        bars(f"{t('handoffs')} · {t('leads')}", ("handoffs", "handoffs"), ("leads", "leads")),
        bars(t("ratings"), ("thumbs_up", "thumbs_up"), ("thumbs_down", "thumbs_down"), stacked=True),
    ]
