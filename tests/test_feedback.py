"""Per-answer feedback (issue 25): after every FEEDBACK_EVERY_N_ANSWERS-th answer the bot asks
"¿Te sirvió?" with 👍 / 👎 buttons; a tap (or a typed thumb right after the question) is stored on the
answer once, a 👎 offers a person, and the stats count answers and ratings per day."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from rag.language import phrase
from tests.conftest import ADMIN_TOKEN, inbound_form, meta_overrides, meta_post, signed_post
from tests.conftest import meta_said as said
from tests.conftest import meta_tap as tap
from tests.conftest import meta_text as text
from webapp.gaps import vector_from_bytes

ANSWERABLE = "¿Cuánto cuesta la fibra de 600 Mb?"
ANOTHER = "¿Cómo doy de baja el servicio?"
UNANSWERABLE = "¿tenéis seguro de coche?"
ASK = phrase("feedback_ask", "es")


@pytest.fixture
def every_n() -> int:
    """FEEDBACK_EVERY_N_ANSWERS; a test's parameter of that name replaces it."""
    return 1


@pytest.fixture
def settings_overrides(settings_overrides, fake_graph, every_n):
    return meta_overrides(settings_overrides, fake_graph) | {"feedback_every_n_answers": every_n}


def buttons_of(sent: dict) -> list[dict]:
    return [button["reply"] for button in sent["interactive"]["action"]["buttons"]]


def first_parts(store) -> list[dict]:
    return list(store.messages.collection.find({"kind": "answer", "part": 0}).sort("created_at", 1))


def test_an_answer_is_followed_by_the_question_with_thumb_buttons(client, worker, store, fake_graph):
    said(client, worker, text(ANSWERABLE))

    answer, question = fake_graph.sent_messages()
    assert answer["type"] == "text" and "600" in answer["body"]
    assert question["type"] == "interactive" and question["body"] == ASK
    (first,) = first_parts(store)
    assert buttons_of(question) == [{"id": f"feedback:up:{first['reply_to'][0]}", "title": "👍"},
                                    {"id": f"feedback:down:{first['reply_to'][0]}", "title": "👎"}]
    assert first["feedback_asked"] is True and first["question"] == ANSWERABLE
    assert len(vector_from_bytes(first["question_vector"])) == 384
    assert fake_graph.contract_violations == []


@pytest.mark.parametrize("every_n, asked", [(0, []), (2, [False, True, False])])
def test_asked_at_most_once_per_every_n_answers(client, worker, store, fake_graph, every_n, asked):
    for question in (ANSWERABLE, ANOTHER, ANSWERABLE)[:len(asked) or 2]:
        said(client, worker, text(question))

    assert [part.get("feedback_asked", False) for part in first_parts(store)] == (asked or [False, False])
    assert sum(sent["body"] == ASK for sent in fake_graph.sent_messages()) == asked.count(True)


def test_a_thumbs_up_is_stored_once_and_thanked_once(client, worker, store, fake_graph):
    said(client, worker, text(ANSWERABLE))
    up = buttons_of(fake_graph.sent_messages()[-1])[0]
    tapped = tap(up["id"], "👍")
    said(client, worker, tapped)
    said(client, worker, tapped)  # delivered again
    said(client, worker, tap(up["id"], "👍"))  # tapped again: the first rating stands

    (first, thanks) = first_parts(store)
    assert first["feedback"] == "up"
    assert thanks["outcome"] == "feedback"
    assert [m["body"] for m in fake_graph.sent_messages()][2:] == [phrase("feedback_thanks", "es")]
    assert store.events.count("answer_rated") == 1
    assert store.messages.collection.count_documents({"direction": "inbound", "status": "acknowledged"}) == 1


def test_a_thumbs_down_offers_a_person_and_yes_hands_over(client, worker, store, fake_graph):
    said(client, worker, text(ANSWERABLE))
    down = buttons_of(fake_graph.sent_messages()[-1])[1]
    said(client, worker, tap(down["id"], "👎"))

    sorry = fake_graph.sent_messages()[-1]
    assert sorry["body"] == phrase("feedback_sorry", "es")
    assert buttons_of(sorry) == [{"id": "talk_to_person", "title": phrase("talk_to_person", "es")}]
    assert first_parts(store)[0]["feedback"] == "down"

    said(client, worker, text("sí"))
    assert store.conversations.collection.find_one()["status"] == "handoff"
    assert fake_graph.sent_messages()[-1]["body"] == phrase("handoff", "es")


def test_a_tap_on_an_old_question_rates_the_answer_it_was_under(client, worker, store, fake_graph):
    said(client, worker, text(ANSWERABLE))
    old_up = buttons_of(fake_graph.sent_messages()[-1])[0]
    said(client, worker, text(ANOTHER))  # the conversation moved on, and was asked again
    said(client, worker, tap(old_up["id"], "👍"))

    first, second, _thanks = first_parts(store)
    assert (first.get("feedback"), second.get("feedback")) == ("up", None)


def test_a_typed_thumb_counts_only_right_after_the_question(client, worker, store):
    said(client, worker, text(ANSWERABLE))
    said(client, worker, text("👎🏽"))

    assert first_parts(store)[0]["feedback"] == "down"


@pytest.mark.parametrize("every_n", [2])
def test_a_typed_thumb_after_an_answer_that_did_not_ask_rates_nothing(client, worker, store, every_n):
    said(client, worker, text(ANSWERABLE))
    said(client, worker, text("👍"))

    assert "feedback" not in first_parts(store)[0] and store.events.count("answer_rated") == 0


def test_a_tap_with_a_question_is_stored_and_the_question_answered(client, worker, store, fake_graph):
    said(client, worker, text(ANSWERABLE))
    up = buttons_of(fake_graph.sent_messages()[-1])[0]
    assert meta_post(client, tap(up["id"], "👍")).status_code == 200
    said(client, worker, text(ANOTHER))  # taken up together with the tap

    first, second = first_parts(store)
    assert first["feedback"] == "up" and second["question"] == ANOTHER and second["outcome"] != "feedback"


def test_a_forged_button_id_rates_nothing(client, worker, store):
    said(client, worker, text(ANSWERABLE))
    said(client, worker, tap("feedback:up:" + "0" * 24, "👍"))  # no answer of ours
    said(client, worker, tap("feedback:sideways:abc", "?"))

    assert "feedback" not in first_parts(store)[0]
    assert store.events.count("answer_rated") == 0


def test_an_unanswered_question_is_kept_with_its_vector_for_the_gaps(client, worker, store):
    said(client, worker, text(UNANSWERABLE))

    (first,) = first_parts(store)
    assert first["outcome"] == "unknown" and first["question"] == UNANSWERABLE
    assert "feedback_asked" not in first and len(vector_from_bytes(first["question_vector"])) == 384


def test_twilio_rates_by_the_buttons_payload(client, worker, store, fake_twilio):
    assert signed_post(client, inbound_form(ANSWERABLE)).status_code == 200
    worker.run_until_idle()
    (first,) = first_parts(store)
    payload = f"feedback:down:{first['reply_to'][0]}"
    assert signed_post(client, inbound_form("👎", ButtonPayload=payload, ButtonText="👎")).status_code == 200
    worker.run_until_idle()

    assert first_parts(store)[0]["feedback"] == "down"
    assert fake_twilio.sent_messages()[-1]["body"] == phrase("feedback_sorry", "es")
    assert fake_twilio.contract_violations == []


def test_stats_count_answers_and_ratings_per_day(client, worker, store, fake_graph):
    said(client, worker, text(ANSWERABLE))
    said(client, worker, tap(buttons_of(fake_graph.sent_messages()[-1])[0]["id"], "👍"))
    said(client, worker, text(UNANSWERABLE))

    response = client.get("/api/v1/whatsapp/stats", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    today = datetime.now(timezone.utc).date().isoformat()
    (day,) = [day for day in response.get_json()["days"] if day["day"] == today]
    assert day["questions"] == 2 and day["answered"] == 1 and day["unknown"] == 1
    assert day["answered_rate"] == 0.5 and day["unknown_rate"] == 0.5
    assert (day["thumbs_up"], day["thumbs_down"], day["thumbs_up_rate"]) == (1, 0, 1.0)
