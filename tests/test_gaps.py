"""Knowledge gaps (issue 25): the questions the bot could not answer, or answered with a 👎, grouped by
meaning from their stored vectors, through `GET /api/v1/knowledge/gaps` (JSON, CSV) and
`scripts/admin.py gaps`; a question a re-ingest answers drops off."""
from __future__ import annotations

import csv
import io
import shutil
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from bson import ObjectId
from openapi_core import Config, OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from openapi_core.deserializing.media_types.util import plain_loads

from scripts import admin, eval_gaps
from tests.conftest import ADMIN_TOKEN, ROOT
from tests.test_admin_command import command_env, run  # noqa: F401 (a fixture)
from tests.test_ingest import run_script
from tests.test_openapi import _bodiless
from webapp.config import Settings
from webapp.gaps import CSV_COLUMNS, gap_groups, vector_bytes, vector_from_bytes

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
GAPS = "/api/v1/knowledge/gaps"
NOW = datetime.now(timezone.utc).replace(microsecond=0)  # the database keeps milliseconds
TOPICS = {
    "television": ["¿qué canales de televisión tenéis?", "teneis tele? q canales hay",
                   "puedo ver el futbol con vosotros en la tele?", "¿tenéis televisión con fútbol?"],
    "car insurance": ["¿tenéis seguro de coche?", "cuanto cuesta asegurar mi carro", "venden seguros para el auto?"],
    "recipe": ["me pasas una receta de tortilla de patatas", "como se hace la tortilla española?",
               "receta de tortilla porfa"],
}


def along(axis: int, wobble: float = 0.0) -> list[float]:
    """A vector pointing along `axis`, a little off it by `wobble`: alike only to those of its axis."""
    vector = [0.0] * 384
    vector[axis], vector[-1] = 1.0, wobble
    return vector


def answer(question: str | None, vector: list[float] | None, ago: timedelta, wa_id: str = "34600000001",
           outcome: str = "unknown", **fields) -> dict:
    """The first part of an answer as the worker stores it, with the question and vector it keeps."""
    kept = {"question": question} if question else {}
    if vector is not None:
        kept["question_vector"] = vector_bytes(vector)
    return {"direction": "outbound", "kind": "answer", "part": 0, "status": "delivered", "outcome": outcome,
            "created_at": NOW - ago, "wa_id": wa_id, "dedup_key": f"reply:{ObjectId()}:answer:0", **kept, **fields}


@pytest.fixture
def seeded(store) -> None:
    """Three open gaps (television: 4 questions, one 👎; car insurance: 2; one kept without a vector),
    and what is not one: a closed gap, one older than 30 days, a 👍, an answer kept without its question."""
    day = timedelta(days=1)
    store.messages.collection.insert_many([
        answer("¿qué canales de televisión tenéis?", along(0), 3 * day, "34600000001"),
        answer("teneis tele? q canales hay", along(0, 0.2), 2 * day, "34600000002"),
        answer("¿qué canales de televisión tenéis?", along(0), day, "34600000001"),
        answer("¿tenéis televisión con fútbol?", along(0, -0.2), 5 * day, "34600000003", "answered", feedback="down"),
        answer("¿tenéis seguro de coche?", along(1), 4 * day, "34600000004"),
        answer("¿tenéis seguro de coche?", along(1), timedelta(hours=6), "34600000005"),
        answer("=SUMA(1;2) seguro de moto?", None, timedelta(hours=2), "34600000006"),
        answer("¿puedo pagar con bizum?", along(2), day, gap_closed_at=NOW),
        answer("¿abrís los domingos?", along(3), 40 * day),
        answer("¿cuánto cuesta la fibra?", along(4), day, outcome="answered", feedback="up"),
        answer(None, None, day),
        {"direction": "inbound", "status": "answered", "body": "¿qué canales tenéis?", "created_at": NOW - day,
         "dedup_key": "in:SM1"},
    ])


def test_questions_of_one_meaning_make_one_group_with_real_embeddings(embedder):
    asked = [{"_id": ObjectId(), "question": question, "question_vector": vector_bytes(embedder.embed_query(question)),
              "created_at": NOW - timedelta(minutes=minutes), "wa_id": f"3460000000{minutes % 2}", "outcome": "unknown"}
             for minutes, question in enumerate(q for questions in TOPICS.values() for q in questions)]
    assert len(vector_from_bytes(asked[0]["question_vector"])) == 384

    groups = gap_groups(asked, Settings.model_fields["gap_similarity"].default)

    assert [{group["example"], *group["examples"]} for group in groups] == [
        set(TOPICS["television"]), set(TOPICS["car insurance"]), set(TOPICS["recipe"])]
    assert [(group["count"], group["customers"]) for group in groups] == [(4, 2), (3, 2), (3, 2)]


def test_the_gaps_are_grouped_and_counted_biggest_first(client, seeded, openapi):
    response = client.get(GAPS, headers=ADMIN)

    assert response.status_code == 200
    openapi.conforms(response)
    body = response.get_json()
    assert (body["days"], body["questions"], body["groups_total"], body["truncated"]) == (30, 7, 3, False)
    television, car, moto = body["groups"]
    assert television == {"count": 4, "customers": 3, "unknown": 3, "disliked": 1,
                          "first_seen": (NOW - timedelta(days=5)).isoformat(),
                          "last_seen": (NOW - timedelta(days=1)).isoformat(),
                          "example": "¿qué canales de televisión tenéis?",
                          "examples": ["teneis tele? q canales hay", "¿tenéis televisión con fútbol?"]}
    assert (car["count"], car["customers"], car["example"], car["examples"]) == (2, 2, "¿tenéis seguro de coche?", [])
    assert (moto["count"], moto["example"]) == (1, "=SUMA(1;2) seguro de moto?")  # kept without a vector

    longer = client.get(GAPS, query_string={"days": 60, "limit": 2}, headers=ADMIN).get_json()
    assert (longer["questions"], longer["groups_total"], len(longer["groups"])) == (8, 4, 2)


def test_the_gaps_as_csv(client, seeded, openapi):
    for response in (client.get(GAPS, query_string={"format": "csv"}, headers=ADMIN),
                     client.get(GAPS, headers={**ADMIN, "Accept": "text/csv"})):
        assert response.status_code == 200 and response.mimetype == "text/csv"
        assert response.headers["Content-Disposition"] == 'attachment; filename="knowledge-gaps.csv"'
        openapi.conforms(response)
        header, *rows = csv.reader(io.StringIO(response.get_data(as_text=True)))
        assert tuple(header) == CSV_COLUMNS
        assert [row[:4] for row in rows] == [["4", "3", "3", "1"], ["2", "2", "2", "0"], ["1", "1", "1", "0"]]
        assert rows[0][7] == "teneis tele? q canales hay | ¿tenéis televisión con fútbol?"
        assert rows[2][6] == "'=SUMA(1;2) seguro de moto?"  # a spreadsheet does not run it


def test_the_gaps_need_the_admin_token(client, openapi):
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        response = client.get(GAPS, headers=headers)
        assert response.status_code == 401
        openapi.conforms(response)


@pytest.mark.parametrize(("query", "field"), [({"days": "0"}, "days"), ({"days": "366"}, "days"),
                                              ({"days": "tres"}, "days"), ({"limit": "0"}, "limit"),
                                              ({"limit": "1001"}, "limit"), ({"format": "xml"}, "format")])
def test_a_bad_parameter_is_refused_naming_it(client, openapi, query, field):
    response = client.get(GAPS, query_string=query, headers=ADMIN)

    assert response.status_code == 400
    openapi.conforms(response)
    assert response.get_json()["field"] == field and field in response.get_json()["error"]


def test_the_admin_command_lists_the_gaps(command_env, seeded, capsys):  # noqa: F811 (a fixture)
    code, out, _ = run(capsys, "gaps")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["count", "customers", "unknown", "disliked", "last", "seen", "example"]
    assert lines[1].split()[:4] == ["4", "3", "3", "1"] and lines[1].endswith("¿qué canales de televisión tenéis?")
    assert lines[-1] == "7 question(s) of the last 30 days in 3 group(s)"

    code, out, _ = run(capsys, "gaps", "--days", "60", "--csv")
    assert code == 0
    assert [row[0] for row in csv.reader(io.StringIO(out))] == ["count", "4", "2", "1", "1"]

    with pytest.raises(SystemExit) as refused:
        admin.main(["gaps", "--days", "366"])
    assert refused.value.code == 2


def test_a_question_a_re_ingest_answers_drops_off(client, store, settings, sample_index_path, embedder, tmp_path):
    """The sample knowledge base says nothing of television; once a page does, the television gap
    closes, while a question it still cannot answer and a 👎 stay."""
    store.messages.collection.insert_many([
        answer(question, embedder.embed_query(question), timedelta(hours=hours), **fields)
        for question, hours, fields in [("¿qué canales de televisión tenéis?", 3, {}),
                                        ("¿qué canales de televisión tenéis?", 2, {}),
                                        ("me pasas una receta de tortilla de patatas", 1, {}),
                                        ("¿cuánto tarda la instalación?", 1, {"outcome": "answered", "feedback": "down"})]])
    examples = lambda: [g["example"] for g in client.get(GAPS, headers=ADMIN).get_json()["groups"]]  # noqa: E731
    assert examples() == ["¿qué canales de televisión tenéis?", "me pasas una receta de tortilla de patatas",
                          "¿cuánto tarda la instalación?"]
    knowledge, index = tmp_path / "kb", tmp_path / "chroma"
    shutil.copytree(ROOT / "sample_kb", knowledge)
    shutil.copytree(sample_index_path, index)  # the sample already ingested: only the new page is embedded
    (knowledge / "television.md").write_text(
        "# Televisión\n\nFibra Clara TV se contrata con cualquier fibra y tiene 80 canales: generalistas, series, "
        "cine, infantiles y documentales. El fútbol está en el paquete Fútbol, por 12 € al mes.\n", encoding="utf-8")

    result = run_script(str(knowledge), chroma_path=index, MONGODB_URI=settings.mongodb_uri)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "files: 1 added, 0 updated, 8 unchanged" in result.stdout
    assert "knowledge gaps: 1 of 2 unanswered question(s) asked again are answered now" in result.stdout
    assert examples() == ["me pasas una receta de tortilla de patatas", "¿cuánto tarda la instalación?"]
    closed = store.messages.collection.find({"gap_closed_at": {"$exists": True}})
    assert [("80 canales" in c["gap_closed_by_answer"], c["question"]) for c in closed] == [
        (True, "¿qué canales de televisión tenéis?")] * 2


def test_without_mongodb_the_ingest_succeeds_and_says_the_gaps_were_not_checked(tmp_path):
    (tmp_path / "kb").mkdir()
    (tmp_path / "kb" / "horario.md").write_text("# Horario\n\nAbrimos de lunes a viernes de 9:00 a 18:00.\n")

    result = run_script(str(tmp_path / "kb"), chroma_path=tmp_path / "chroma")

    assert result.returncode == 0, result.stderr
    assert "files: 1 added" in result.stdout
    assert "knowledge gaps not re-checked: MongoDB is out of reach" in result.stdout


def test_vectors_are_stored_unit_length_little_endian():
    stored = vector_bytes([3.0, 4.0])
    assert bytes(stored) == np.array([0.6, 0.8], dtype="<f4").tobytes()
    assert vector_from_bytes(stored).tolist() == pytest.approx([0.6, 0.8])



def test_the_held_out_gaps_share_no_topic_with_those_the_threshold_was_chosen_on():
    questions, topics = eval_gaps.holdout_questions(ROOT / "eval" / "gaps_holdout.jsonl")
    assert len(questions) == len(set(questions)) == len(topics)
    assert all(3 <= topics.count(topic) <= 4 for topic in topics)
    assert not set(topics) & set(eval_gaps.labelled_questions()[2])


class OpenAPIDocument:
    def __init__(self, document: dict):
        # CSV is text: openapi-core reads a type it does not know as bytes
        self.openapi = OpenAPI.from_dict(document, config=Config(extra_media_type_deserializers={"text/csv": plain_loads}))

    def conforms(self, response) -> None:
        """The response is as the app's OpenAPI document describes it (raises otherwise)."""
        self.openapi.validate_response(WerkzeugOpenAPIRequest(_bodiless(response.request)),
                                       WerkzeugOpenAPIResponse(response))


@pytest.fixture
def openapi(client) -> OpenAPIDocument:
    return OpenAPIDocument(client.get("/api/v1/openapi.json").get_json())
