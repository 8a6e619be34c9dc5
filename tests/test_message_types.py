"""Whatever WhatsApp sends never breaks the bot and never gets silence: captions and tapped
buttons are read as text; media, voice notes, stickers, locations and messages of types we cannot
read are stored (media URLs kept, never fetched) and get a short request for text, in the
customer's language; a reaction is kept and not answered (a reply to an emoji is noise)."""
from __future__ import annotations

import pytest

from scripts.chat import meta_delivery
from tests.conftest import META_PHONE_NUMBER_ID, inbound_form, meta_overrides, meta_post, signed_post

MEDIA = "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1"


def only_reply(fake_twilio) -> str:
    (sent,) = fake_twilio.sent_messages()
    return sent["body"]


def stored(store) -> dict:
    return store.messages.collection.find_one({"direction": "inbound"})


@pytest.mark.parametrize(("fields", "kind", "words"), [
    ({"NumMedia": "1", "MediaUrl0": MEDIA, "MediaContentType0": "image/jpeg"}, "image", "texto"),
    ({"NumMedia": "1", "MediaUrl0": MEDIA, "MediaContentType0": "image/webp"}, "image", "texto"),  # a sticker
    ({"NumMedia": "1", "MediaUrl0": MEDIA, "MediaContentType0": "audio/ogg", "MessageType": "audio"}, "audio", "notas de voz"),
    ({"NumMedia": "1", "MediaUrl0": MEDIA, "MediaContentType0": "application/pdf", "MessageType": "document"}, "document", "texto"),
    ({"Latitude": "40.4168", "Longitude": "-3.7038", "Address": "Puerta del Sol, Madrid", "Label": "Sol",
      "MessageType": "location"}, "location", "texto"),
    ({"MessageType": "unsupported"}, "unsupported", "texto"),  # e.g. a poll: WhatsApp sends no text
    ({}, "unsupported", "texto"),  # nothing at all that we can read
])
def test_what_cannot_be_read_is_kept_and_asked_again_as_text(client, store, worker, fake_twilio, fields, kind, words):
    response = signed_post(client, inbound_form("", **fields))
    worker.run_until_idle()

    assert response.status_code == 200
    assert words in only_reply(fake_twilio)
    message = stored(store)
    assert message["type"] == kind and message["status"] == "answered"
    if "MediaUrl0" in fields:
        assert message["media"] == [{"url": MEDIA, "content_type": fields["MediaContentType0"]}]
    if "Latitude" in fields:
        assert message["location"] == {"latitude": 40.4168, "longitude": -3.7038, "address": "Puerta del Sol, Madrid",
                                       "label": "Sol"}
    assert [r for r in fake_twilio.requests if "Media" in r.path and r.method == "GET"] == []  # never fetched


def test_the_request_for_text_is_in_the_customers_language(client, worker, fake_twilio):
    signed_post(client, inbound_form("How much does the 600 Mb fibre plan cost per month?"))
    worker.run_until_idle()
    signed_post(client, inbound_form("", NumMedia="1", MediaUrl0=MEDIA, MediaContentType0="audio/ogg"))
    worker.run_until_idle()

    assert "voice notes" in fake_twilio.sent_messages()[-1]["body"]


QUESTION = "¿Cuánto cuesta la fibra de 600 Mb?"


@pytest.mark.parametrize(("body", "fields"), [
    (QUESTION, {"NumMedia": "1", "MediaUrl0": MEDIA, "MediaContentType0": "image/jpeg"}),  # a caption
    ("", {"ButtonText": QUESTION, "ButtonPayload": "price_600", "MessageType": "button"}),
])
def test_a_caption_or_a_tapped_button_is_answered_as_text(client, store, worker, fake_twilio, body, fields):
    signed_post(client, inbound_form(body, **fields))
    worker.run_until_idle()

    assert "32" in only_reply(fake_twilio)
    assert stored(store)["body"] == QUESTION


def test_a_reaction_is_kept_and_not_answered(client, store, worker, fake_twilio):
    signed_post(client, inbound_form("", MessageType="reaction"))
    worker.run_until_idle()

    assert fake_twilio.sent_messages() == []
    assert stored(store)["status"] == "acknowledged" and stored(store)["type"] == "reaction"


@pytest.mark.parametrize("coordinates", [("91", "0"), ("nan", "0"), ("inf", "1"), ("norte", "sur"), ("", "")])
def test_coordinates_off_the_globe_are_dropped_and_the_message_still_answered(client, store, worker, fake_twilio,
                                                                              coordinates):
    latitude, longitude = coordinates
    signed_post(client, inbound_form("", Latitude=latitude, Longitude=longitude))
    worker.run_until_idle()

    assert "texto" in only_reply(fake_twilio)
    assert "location" not in stored(store)


# -- the same through Meta's Cloud API ---------------------------------------------------------------

CUSTOMER = "34600111222"


@pytest.fixture
def meta_too(settings_overrides, fake_graph):
    settings_overrides.update(meta_overrides(settings_overrides, fake_graph))  # before the app is built from them


def meta_message(client, message: dict) -> str:
    delivery = meta_delivery(CUSTOMER, META_PHONE_NUMBER_ID, message, name="Ana")
    assert meta_post(client, delivery).status_code == 200
    return delivery["entry"][0]["changes"][0]["value"]["messages"][0]["id"]


@pytest.mark.parametrize(("message", "media", "words"), [
    ({"type": "audio", "audio": {"id": "2001", "mime_type": "audio/ogg; codecs=opus", "sha256": "x", "voice": True}},
     {"id": "2001", "content_type": "audio/ogg; codecs=opus"}, "notas de voz"),
    ({"type": "video", "video": {"id": "2002", "mime_type": "video/mp4", "sha256": "x"}},
     {"id": "2002", "content_type": "video/mp4"}, "texto"),
    ({"type": "document", "document": {"id": "2003", "mime_type": "application/pdf", "sha256": "x",
                                       "filename": "factura.pdf"}},
     {"id": "2003", "content_type": "application/pdf", "filename": "factura.pdf"}, "texto"),
    ({"type": "sticker", "sticker": {"id": "2004", "mime_type": "image/webp", "sha256": "x", "animated": False}},
     {"id": "2004", "content_type": "image/webp"}, "texto"),
], ids=["voice", "video", "document", "sticker"])
def test_meta_media_is_kept_by_its_id_never_fetched_and_asked_again_as_text(meta_too, client, store, worker,
                                                                            fake_graph, fake_twilio, message, media,
                                                                            words):
    wamid = meta_message(client, message)
    worker.run_until_idle()

    (sent,) = fake_graph.sent_messages()
    assert words in sent["body"] and sent["to"] == CUSTOMER
    stored = store.messages.find_inbound(wamid)
    assert (stored["channel"], stored["type"], stored["status"]) == ("meta", message["type"], "answered")
    assert stored["media"] == [media]
    assert [r for r in fake_graph.requests if r.method == "GET"] == []  # the media id is never looked up
    assert fake_twilio.sent_messages() == []


def test_a_meta_reply_to_a_message_from_an_ad_keeps_what_it_replies_to_and_the_ad(meta_too, client, store):
    wamid = meta_message(client, {
        "type": "text", "text": {"body": "¿Sigue la oferta?"},
        "context": {"from": "15550783881", "id": "wamid.prev"},
        "referral": {"source_url": "https://fb.me/3cr4Wqqkv", "source_id": "120210", "source_type": "ad",
                     "headline": "Fibra 600 Mb a 32 €", "body": "Sin permanencia", "media_type": "image"}})

    stored = store.messages.find_inbound(wamid)
    assert stored["body"] == "¿Sigue la oferta?"
    assert stored["context"] == {"replied_to": "wamid.prev", "referral_source": "https://fb.me/3cr4Wqqkv",
                                 "referral_headline": "Fibra 600 Mb a 32 €"}
