"""Leads, end to end: contact details a customer writes are noted once per conversation (created,
then updated), each new lead is an event, and admins list them or download them as CSV."""
from __future__ import annotations

import csv
import io

import pytest

from tests.conftest import ADMIN_TOKEN, inbound_form, signed_post
from webapp.leads import contact_details, only_contact_details

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
W = "/api/v1/whatsapp"


def say(client, worker, text: str, sender: str = "whatsapp:+34600111222", **fields) -> None:
    assert signed_post(client, inbound_form(text, sender=sender, **fields)).status_code == 200
    worker.run_until_idle()


def test_details_given_over_a_conversation_make_one_lead(client, store, worker, fake_twilio):
    say(client, worker, "Hola, me llamo ana garcía y quiero contratar la fibra de 600 Mb")
    say(client, worker, "mi correo es Ana.Garcia@Example.com y mi móvil 612 345 678")

    (lead,) = store.leads.collection.find()
    conversation = store.conversations.collection.find_one()
    assert lead["_id"] == conversation["_id"] and lead["wa_id"] == "34600111222" and lead["source"] == "whatsapp"
    assert (lead["name"], lead["email"], lead["phone"]) == ("Ana García", "ana.garcia@example.com", "612345678")
    assert lead["profile_name"] == "Ana" and lead["updated_at"] > lead["created_at"]
    assert store.events.count("lead_created") == 1
    assert len(fake_twilio.sent_messages()) == 2  # each message is answered as well


def test_a_message_of_contact_details_alone_is_thanked_not_searched(client, store, worker, fake_twilio):
    say(client, worker, "¿Cuánto cuesta la fibra de 600 Mb?")
    say(client, worker, "me llamo Ana y mi correo es ana@example.com")
    say(client, worker, "My name is John and my phone is +44 7700 900123", sender="whatsapp:+447700900123")

    replies = [m["body"] for m in fake_twilio.sent_messages()]
    assert "32" in replies[0]
    assert replies[1] == "¡Gracias! Lo he anotado. ¿En qué más puedo ayudarte?"
    assert replies[2] == "Thank you! I've noted it. How else can I help?"
    assert store.leads.collection.count_documents({}) == 2


@pytest.mark.parametrize(("text", "alone"), [
    ("me llamo Ana y mi correo es ana@example.com", True), ("mi móvil es 612 345 678", True),
    ("Soy Ana López", True), ("mi correo es ana@example.com, gracias", True),
    ("me llamo Ana, ¿cuánto cuesta la fibra?", False), ("me llamo Ana y quiero fibra", False),
    ("me llamo ana garcía y quiero contratar la fibra", False), ("hola", False),
])
def test_contact_details_alone_are_told_from_a_question(text, alone):
    assert only_contact_details(text) is alone


def test_a_conversation_without_contact_details_makes_no_lead(client, store, worker, fake_twilio):
    say(client, worker, "¿Cuánto cuesta la fibra de 600 Mb? Soy cliente desde 2019")
    assert store.leads.collection.count_documents({}) == 0 and store.events.count("lead_created") == 0


def test_leads_are_listed_and_exported_as_csv(client, store, worker, fake_twilio):
    say(client, worker, "me llamo Luis Pérez", sender="whatsapp:+34600111333")
    say(client, worker, "mi email es ana@example.com", sender="whatsapp:+34600111222",
        ProfileName='=HYPERLINK("https://evil.example","x")')  # a profile name is the customer's to choose

    listed = client.get(f"{W}/leads?per_page=1", headers=ADMIN).get_json()
    exported = client.get(f"{W}/leads.csv", headers=ADMIN)

    assert listed["total"] == 2 and listed["leads"][0]["email"] == "ana@example.com"
    assert exported.status_code == 200 and exported.mimetype == "text/csv"
    assert "attachment" in exported.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True))))
    assert [(r["wa_id"], r["name"], r["email"]) for r in rows] == [("34600111222", "", "ana@example.com"),
                                                                   ("34600111333", "Luis Pérez", "")]
    assert rows[0]["profile_name"] == '\'=HYPERLINK("https://evil.example","x")'  # not run as a formula
    assert client.get(f"{W}/leads.csv").status_code == 401
    assert client.get(f"{W}/leads?page=0", headers=ADMIN).status_code == 400


@pytest.mark.parametrize(("text", "details"), [
    ("me llamo ana garcía y quiero contratar la fibra", {"name": "Ana García"}),
    ("Soy Ana López, mi correo es Ana.Lopez@Example.com", {"name": "Ana López", "email": "ana.lopez@example.com"}),
    ("llamadme al 612 345 678 por favor", {"phone": "612345678"}),
    ("mi teléfono es +34 612-345-678", {"phone": "+34612345678"}),
    ("My name is John Smith", {"name": "John Smith"}),
    ("I'm Peter and I need help", {"name": "Peter"}),
    ("soy cliente desde 2019", {}),
    ("la fibra de 600 cuesta 32 € al mes", {}),
    ("mi pedido es el 12345678", {}),
    ("mi DNI es 12345678Z", {}),
])
def test_contact_details_are_found_in_what_customers_write(text, details):
    assert contact_details(text) == details
