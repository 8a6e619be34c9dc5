"""Quick-reply buttons (issue 25): the "I don't know" reply offers a person with a button (the Cloud
API: Meta, Kapso, 360dialog, an interactive message; Twilio, a Content API quick-reply, see
test_twilio_buttons.py), and a tap hands the conversation over as typing "quiero hablar con una
persona" does, decided by the button's id."""
from __future__ import annotations

import pytest

from rag.language import phrase
from tests.conftest import inbound_form, meta_overrides, signed_post
from tests.conftest import meta_said as said
from tests.conftest import meta_tap as tap
from tests.conftest import meta_text as text

UNANSWERABLE = "¿tenéis seguro de coche?"


@pytest.fixture
def settings_overrides(settings_overrides, fake_graph):
    return meta_overrides(settings_overrides, fake_graph)


def test_i_dont_know_offers_a_person_with_a_button_on_the_cloud_api(client, worker, fake_graph):
    said(client, worker, text(UNANSWERABLE))

    (sent,) = fake_graph.sent_messages()
    assert sent["type"] == "interactive" and sent["body"] == phrase("dont_know", "es")
    assert sent["interactive"]["action"]["buttons"] == [
        {"type": "reply", "reply": {"id": "talk_to_person", "title": "Hablar con alguien"}}]
    assert fake_graph.contract_violations == []


def test_an_answer_the_bot_could_give_has_no_button(client, worker, fake_graph):
    said(client, worker, text("¿Cuánto cuesta la fibra de 600 Mb?"))

    assert fake_graph.sent_messages()[0]["type"] == "text"


def test_the_buttons_id_decides_not_its_title_and_a_tap_arriving_twice_counts_once(client, worker, store, fake_graph):
    said(client, worker, text(UNANSWERABLE))
    tapped = tap("talk_to_person", "Vale")  # a title that asks for nobody: the id is what counts
    said(client, worker, tapped)
    said(client, worker, tapped)  # Meta delivers it again

    conversation = store.conversations.collection.find_one()
    assert conversation["status"] == "handoff" and conversation["handoff"]["reason"] == "asked"
    handoffs = [m for m in fake_graph.sent_messages() if m["body"] == phrase("handoff", "es")]
    assert len(handoffs) == 1


def test_a_tap_on_another_button_does_not_hand_over(client, worker, store, fake_graph):
    said(client, worker, tap("something_else", "Hablar"))

    assert store.conversations.collection.find_one()["status"] == "open"


def test_twilio_offers_a_person_with_a_button_too(client, worker, fake_twilio):
    assert signed_post(client, inbound_form(UNANSWERABLE)).status_code == 200
    worker.run_until_idle()

    sent = fake_twilio.sent_messages()[-1]
    assert sent["body"] == phrase("dont_know", "es") and sent["content_variables"]["2"] == "talk_to_person"
    assert fake_twilio.contract_violations == []
