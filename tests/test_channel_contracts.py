"""Every shape of request a channel sends, on the wire to its fake provider, checked there against
the provider's official document: for the Cloud API (Meta, Kapso, 360dialog) a text, a reply split
in parts, the read receipt with the typing indicator, quick-reply buttons and a template against
Meta's OpenAPI description; for Twilio a Content template and quick-reply buttons (a content created
through the Content API) against Twilio's."""
from __future__ import annotations

import json

import pytest

from tests.conftest import D360_API_KEY, KAPSO_API_KEY, meta_overrides
from tests.fakes.fake_graph import FakeGraph
from webapp.channels import build_channels
from webapp.channels.base import Button, Failure, SendError, Template
from webapp.config import load_settings
from webapp.formatting import split_parts

CUSTOMER = "34600111222"
MEXICAN = "5215512345678"
KAPSO_NUMBER = "647015955153740"
BUTTONS = [Button("handoff", "Hablar con persona"), Button("more", "Otra pregunta")]
TEMPLATE = Template("respuesta_pendiente", "es", ("Ana", "tu consulta sobre la fibra"))


@pytest.fixture
def providers(fake_graph, fake_kapso, fake_360dialog) -> dict[str, FakeGraph]:
    return {"meta": fake_graph, "kapso": fake_kapso, "360dialog": fake_360dialog}


@pytest.fixture
def channels(settings_overrides, providers):
    settings = load_settings(**dict(
        meta_overrides(settings_overrides, providers["meta"]),
        kapso_webhook_secret="kapso-secret", kapso_api_key=KAPSO_API_KEY, kapso_phone_number_id=KAPSO_NUMBER,
        kapso_api_base=providers["kapso"].base_url + "/meta/whatsapp/v24.0",
        d360_webhook_secret="d360-secret", d360_api_key=D360_API_KEY, d360_api_base=providers["360dialog"].base_url))
    return build_channels(settings)


@pytest.mark.parametrize("name", ["meta", "kapso", "360dialog"])
def test_every_request_shape_a_cloud_api_channel_sends_conforms_to_metas_document(channels, providers, name):
    channel, provider = channels[name], providers[name]
    parts = split_parts("Una frase larga sobre la fibra y sus precios. " * 150, channel.max_part_chars)
    assert len(parts) == 2
    results = [channel.send_text("", CUSTOMER, part) for part in parts]
    results.append(channel.send_buttons("", CUSTOMER, "¿Quieres hablar con una persona?", BUTTONS))
    results.append(channel.send_template("", CUSTOMER, TEMPLATE))
    channel.acknowledge("", "wamid.HBgLMzQ2MDAxMTEyMjIVAgASGBQzQTdCRDBFMjk0")

    assert provider.contract_violations == []
    assert all(result.status == "accepted" for result in results)
    assert [m["type"] for m in provider.sent_messages()] == ["text", "text", "interactive", "template"]
    assert [m["id"] for m in provider.sent_messages()] == [result.external_id for result in results]
    sent = [r.json() for r in provider.requests if r.method == "POST"]
    assert [m.get("type") for m in sent] == ["text", "text", "interactive", "template", None]
    assert sent[2]["interactive"] == {"type": "button", "body": {"text": "¿Quieres hablar con una persona?"},
                                      "action": {"buttons": [
                                          {"type": "reply", "reply": {"id": "handoff", "title": "Hablar con persona"}},
                                          {"type": "reply", "reply": {"id": "more", "title": "Otra pregunta"}}]}}
    assert sent[3]["template"] == {"name": "respuesta_pendiente", "language": {"code": "es", "policy": "deterministic"},
                                 "components": [
        {"type": "body", "parameters": [{"type": "text", "text": "Ana"},
                                        {"type": "text", "text": "tu consulta sobre la fibra"}]}]}
    assert sent[4] == {"messaging_product": "whatsapp", "status": "read",
                       "message_id": "wamid.HBgLMzQ2MDAxMTEyMjIVAgASGBQzQTdCRDBFMjk0",
                       "typing_indicator": {"type": "text"}}


def test_a_template_without_variables_has_no_components(channels, fake_graph):
    channels["meta"].send_template("", CUSTOMER, Template("hello_world", "en_US"))
    (sent,) = [r.json() for r in fake_graph.requests if r.method == "POST"]
    assert sent["template"] == {"name": "hello_world", "language": {"code": "en_US", "policy": "deterministic"}}
    assert fake_graph.contract_violations == []


@pytest.mark.parametrize("buttons, text", [
    ([], "¿Algo más?"),
    ([Button(str(n), f"Opción {n}") for n in range(4)], "¿Algo más?"),  # WhatsApp takes three
    ([Button("handoff", "Hablar con una persona ahora")], "¿Algo más?"),  # a title over 20 characters
    ([Button("", "Sí")], "¿Algo más?"),
    (BUTTONS, "x" * 1025),  # an interactive body over 1,024 characters
])
def test_buttons_whatsapp_would_refuse_are_refused_before_sending(channels, fake_graph, buttons, text):
    with pytest.raises(SendError) as refused:
        channels["meta"].send_buttons("", CUSTOMER, text, buttons)
    assert refused.value.failure is Failure.PERMANENT
    assert fake_graph.requests == []


def test_buttons_and_templates_to_a_mexican_number_drop_the_mobile_digit_as_texts_do(channels, fake_graph):
    fake_graph.allowed_numbers = {"525512345678"}
    channels["meta"].send_buttons("", MEXICAN, "¿Te sirvió?", BUTTONS)
    channels["meta"].send_template("", MEXICAN, TEMPLATE)
    assert [r.json()["to"] for r in fake_graph.requests] == [MEXICAN, "525512345678", "525512345678"]
    assert fake_graph.contract_violations == []


def test_twilio_sends_a_content_template_as_twilios_document_describes(channels, fake_twilio):
    fake_twilio.add_content("HX0123456789abcdef0123456789abcdef")  # approved in the Console
    result = channels["twilio"].send_template("", CUSTOMER, Template("HX0123456789abcdef0123456789abcdef",
                                                                     variables=("Ana", "tu consulta")))
    assert result.external_id.startswith("SM")
    (request,) = [r for r in fake_twilio.requests if r.path.endswith("/Messages.json")]
    assert request.param("ContentSid") == "HX0123456789abcdef0123456789abcdef"
    assert json.loads(request.param("ContentVariables")) == {"1": "Ana", "2": "tu consulta"}
    assert request.param("Body") is None
    assert fake_twilio.contract_violations == []


def test_twilio_sends_buttons_as_a_quick_reply_content_as_twilios_documents_describe(channels, fake_twilio):
    result = channels["twilio"].send_buttons("", CUSTOMER, "¿Quieres hablar con una persona?", BUTTONS)

    assert result.external_id.startswith("SM")
    created, sent = fake_twilio.requests
    assert (created.path, created.status_returned) == ("/v1/Content", 201)
    assert sent.param("ContentSid") == fake_twilio.contents()[0]["sid"] and sent.param("Body") is None
    assert json.loads(sent.param("ContentVariables")) == {"1": "¿Quieres hablar con una persona?", "2": "handoff",
                                                          "3": "more"}
    assert fake_twilio.contract_violations == []


def test_buttons_a_channel_cannot_show_are_refused(channels, fake_twilio):
    four = [*BUTTONS, Button("a", "Uno"), Button("b", "Dos")]
    assert not channels["twilio"].shows_buttons("¿Algo más?", four)
    with pytest.raises(SendError) as refused:
        channels["twilio"].send_buttons("", CUSTOMER, "¿Algo más?", four)
    assert refused.value.failure is Failure.PERMANENT
    assert fake_twilio.requests == []


def test_dry_run_channels_take_every_shape_their_provider_would(settings_overrides, fake_twilio):
    dry = build_channels(load_settings(**dict(settings_overrides, twilio_account_sid="", meta_app_secret="secret",
                                              meta_verify_token="token")))
    assert dry["meta"].dry_run and dry["meta"].sends_buttons
    assert dry["meta"].send_buttons("", CUSTOMER, "¿Algo más?", BUTTONS).status == "dry_run"
    assert dry["meta"].send_template("", CUSTOMER, TEMPLATE).status == "dry_run"
    assert dry["twilio"].dry_run and dry["twilio"].sends_buttons
    assert dry["twilio"].send_buttons("", CUSTOMER, "¿Algo más?", BUTTONS).status == "dry_run"
    assert fake_twilio.requests == []  # no content created either
