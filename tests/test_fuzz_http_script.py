"""scripts/fuzz_http.py, the 10,000-request fuzz benchmark, in small: it starts its own database,
fake Twilio and gunicorn, sends every family of requests and finds no 5xx."""
from __future__ import annotations

import re

from tests.conftest import script_output


def test_a_short_fuzz_run_through_gunicorn_answers_no_5xx_and_refuses_oversized_bodies():
    output = script_output("fuzz_http.py", "--requests", "400", "--max-seconds", "120", timeout=300)

    assert re.search(r"^requests sent +400 ", output, re.M)
    assert re.search(r"^5xx +0 ", output, re.M)
    assert re.search(r"^no answer +0$", output, re.M)
    families = re.search(r"^requests sent .*\((.*)\)$", output, re.M)[1]
    for family in ("webhook", "status", "admin", "any_path", "raw_body", "odd_headers", "oversized",
                   "oversized_chunked", "deep_json", "wrong_types", "meta_delivery", "meta_verify",
                   "kapso_delivery", "360dialog_delivery", "console"):
        assert f"'{family}':" in families
    oversized = re.search(r"^oversized bodies -> 413 +with Content-Length (\d+) of (\d+).*chunked (\d+) of (\d+)",
                          output, re.M)
    assert oversized[1] == oversized[2] and oversized[3] == oversized[4]
    deep = re.search(r"^JSON bodies \(right token\) +nested too deeply \{(.*?)\}", output, re.M)[1]
    assert re.fullmatch(r"'400': \d+", deep), deep  # every one refused like any malformed body
