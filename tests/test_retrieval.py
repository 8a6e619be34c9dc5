"""Retrieval and offline answers: BM25 + dense fusion, typo correction, refusal, offline answers,
source line, and the lexical index following ingests. Against real Chroma and the real embedder."""
from __future__ import annotations

import threading
import time

import pytest

from rag import retrieve
from rag.answer import build_assistant, make_retriever
from rag.ingest import ingest
from rag.lexical import LexicalIndex
from rag.retrieve import Turn, fuse, search_text
from rag.split import Chunk
from rag.store import Hit, open_index
from webapp.config import load_settings

PRICES = "planes-y-precios.md"


@pytest.fixture
def sample_settings(sample_index_path):
    return load_settings(_env_file=None, validate_twilio_signature=False, chroma_path=sample_index_path)


@pytest.fixture
def retriever(sample_settings, embedder):
    return make_retriever(sample_settings, embedder)


def hit(source: str, score: float = 0.9) -> Hit:
    return Hit(id=f"{source}#x", text=source, metadata={"source": source}, score=score)


def test_fusion_weights_ranks_of_both_rankers():
    dense = [hit("a"), hit("b"), hit("c")]
    lexical = [hit("c"), hit("b")]
    # b: 2nd in both; c: 3rd dense but 1st lexical, which outweighs a, 1st dense but lexically unfound
    assert [h.source for h in fuse(dense, lexical, 0.3)] == ["b", "c", "a"]
    assert [h.source for h in fuse(dense, lexical, 0.0)] == ["a", "b", "c"]
    assert [h.source for h in fuse(dense, [], 0.3)] == ["a", "b", "c"]


def test_typos_are_corrected_against_the_documents_but_real_words_are_kept():
    lexical = LexicalIndex(["1", "2"], ["El coseguro es un porcentaje que le van a cobrar.", "La inscripción abierta empieza en noviembre."])
    assert lexical.correct("q es el cosegruo??") == "q es el coseguro??"
    assert lexical.correct("cuando empiesa la inscripcion") == "cuando empieza la inscripcion"
    assert lexical.correct("cuando emp") == "cuando emp"  # too short to guess
    assert lexical.correct("seguro para mi carro") == "seguro para mi carro"  # a Spanish word, not a typo
    assert lexical.unknown_terms("seguro para mi perro") == ["seguro", "perro"]
    assert lexical.unknown_terms("cuándo empieza la inscripcion") == []  # accents and word forms known
    assert lexical.unknown_terms("y me lo cobrarian") == []  # "cobrarían", typed without its accent
    assert lexical.search("coseguro", 5)[0][0] == "1"
    assert lexical.search("zzz", 5) == []


def test_a_word_is_not_known_from_an_unrelated_word_of_the_same_short_stem():
    lexical = LexicalIndex(["1"], ["Vea Covered California y su coverage. Dan cobertura este mes."])
    assert lexical.unknown_terms("la vacuna del covid") == ["vacuna", "covid"]  # "cov", as "covered" is
    assert lexical.unknown_terms("coverage, meses") == []  # the same words, other forms
    assert LexicalIndex(["1"], ["Le hará un descuento."]).unknown_terms("me harian un descuento?") == []


def test_a_typo_still_finds_the_right_page(retriever):
    hits = retriever.search("cuanto cuesta la fibar de 600")
    assert hits[0].source == PRICES


def test_english_questions_use_dense_retrieval_alone(retriever, monkeypatch):
    monkeypatch.setattr(LexicalIndex, "search", lambda *args: pytest.fail("BM25 on an English question"))
    assert retriever.search("how much does the 600 Mb fibre cost per month?")[0].source == PRICES


@pytest.mark.parametrize("question", ["a cuanto cotizan las acciones de fibra clara?",
                                      "telenova es mas barata q vosotros?"])
def test_question_about_something_the_documents_never_mention_is_refused(sample_settings, retriever, question):
    answer = build_assistant(sample_settings, retriever).answer(question)
    assert answer.outcome == "unknown"
    assert max(h.score for h in answer.retrieved) >= retriever.threshold  # a cosine floor alone would answer


@pytest.mark.parametrize("question", ["porfis, a que hora atendeis por telefono los domingos?",
                                      "como saco un duplicado de la factura porfa"])
def test_words_the_documents_never_use_do_not_refuse_a_question_they_do_not_change(sample_settings, retriever,
                                                                                     question):
    assert retriever.lexical().unknown_terms(question)  # "porfis", "saco"…
    assert build_assistant(sample_settings, retriever).answer(question).outcome == "answered"


@pytest.mark.parametrize(("follow_up", "outcome"), [("me pasas una receta de tamales?", "unknown"),
                                                   ("y tienen seguro para mi perro?", "unknown"),
                                                   ("y cuánto me cuesta usar datos allí?", "answered")])
def test_a_follow_up_about_something_unknown_is_refused_though_the_previous_message_was_not(
        sample_settings, retriever, follow_up, outcome):
    history = [Turn("user", "cuánto cuesta la fibra de 600 megas?"), Turn("assistant", "32 € al mes.")]
    answer = build_assistant(sample_settings, retriever).answer(follow_up, history)
    assert answer.outcome == outcome


def test_a_short_message_that_changes_the_subject_is_searched_alone(retriever):
    history = [Turn("user", "cuanto tardan en instalar la fibra?"), Turn("assistant", "5 días laborables.")]
    assert search_text("y eso cuanto cuesta?", history) == "cuanto tardan en instalar la fibra?\ny eso cuanto cuesta?"
    assert search_text("Otra cosa, ¿puedo pagar con tarjeta?", history) == "Otra cosa, ¿puedo pagar con tarjeta?"
    assert search_text("by the way, can I pay by card?", history) == "by the way, can I pay by card?"
    # searched together with the installation question, the billing page falls out of the top 3
    assert "facturacion-y-pagos.md" in [h.source for h in retriever.search("otra cosa, puedo pagar con tarjeta?", history)[:3]]


@pytest.mark.parametrize("previous, message, joined", [
    ("cuanto cuesta la fibra de 600?", "como doy de baja el servicio", False),  # a question of its own
    ("como me doy de baja?", "cuanto cuesta la fibra de 600?", False),
    ("cuanto cuesta la fibra de 600?", "¿y la de 1 Gb?", True),  # goes on from it
    ("cuanto cuesta la fibra de 600?", "cuanto cuesta?", True),  # names nothing itself
    ("que es el roaming?", "funciona eso en todos los paises de la union europea?", True),  # points back
    ("tengo una empresa de 8 empleados", "puedo contratar la fibra para la oficina con factura?", True),  # after a situation
    ("me voy de viaje a estados unidos", "y si me quedo sin datos alli mientras estoy de viaje por la costa?", True),
    ("cuanto cuesta la fibra?", "otra cosa, puedo pagar con tarjeta?", False),  # says it changes the subject
])
def test_a_follow_up_is_searched_with_the_previous_message_and_a_question_of_its_own_alone(previous, message,
                                                                                           joined):
    history = [Turn("user", previous), Turn("assistant", "…")]
    assert (search_text(message, history) != message) is joined


def test_offline_answer_is_the_relevant_sentences_not_the_whole_chunk(sample_settings, retriever):
    answer = build_assistant(sample_settings, retriever).answer("cuánto tarda la instalación?")
    assert answer.outcome == "answered"
    assert "5 días laborables" in answer.text
    assert len(answer.text) < len(answer.retrieved[0].text)
    assert "Fuente" not in answer.text


def test_offline_answer_to_a_follow_up_quotes_what_the_conversation_is_about(sample_settings, retriever):
    history = [Turn("user", "teneis tienda en valencia?"), Turn("assistant", "Sí, en Valencia.")]
    answer = build_assistant(sample_settings, retriever).answer("y a q hora abre", history)
    # the shops' opening hours (a time, as asked), not the phone lines' or the addresses
    assert answer.text.startswith("Horario de las tiendas:") and "de 9:30 a 14:00" in answer.text


def test_source_line_when_configured(sample_settings, retriever):
    settings = sample_settings.model_copy(update={"cite_sources": True})
    answer = build_assistant(settings, retriever).answer("cuánto cuesta la fibra de 600?")
    assert answer.text.endswith("\n\nFuente: Planes y precios")
    english = build_assistant(settings, retriever).answer("how much does the 600 Mb fibre cost per month?")
    assert english.text.endswith("\n\nSource: Planes y precios")


def test_lexical_index_follows_an_ingest_by_another_process(tmp_path, embedder, monkeypatch):
    monkeypatch.setattr(retrieve, "REFRESH_SECONDS", 0.0)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Horario\nAbrimos de lunes a viernes de 9 a 18.")
    settings = load_settings(_env_file=None, validate_twilio_signature=False, chroma_path=tmp_path / "index")
    ingest([docs], open_index(settings, embedder.embedder_id), embedder)
    retriever = make_retriever(settings, embedder)
    assert retriever.lexical().search("zarzaparrilla", 5) == []

    (docs / "b.md").write_text("# Bebidas\nServimos zarzaparrilla fría en verano.")
    ingest([docs], open_index(settings, embedder.embedder_id), embedder)  # another index handle, as a separate process has
    assert retriever.lexical().search("zarzaparrilla", 5)[0][0].startswith("b.md#")


def test_readers_see_a_whole_version_of_a_document_while_it_is_replaced(tmp_path, embedder):
    docs = tmp_path / "docs"
    docs.mkdir()
    versions = [
        "# Precios\nLa fibra cuesta 30 euros al mes.\n\n## Permanencia\nLa permanencia es de 12 meses.",
        "# Precios\nLa fibra cuesta 35 euros al mes.\n\n## Permanencia\nNo hay permanencia.",
    ]
    settings = load_settings(_env_file=None, validate_twilio_signature=False, chroma_path=tmp_path / "index")
    index = open_index(settings, embedder.embedder_id)
    (docs / "precios.md").write_text(versions[0])
    ingest([docs], index, embedder)
    valid_texts = set(open_index(settings, embedder.embedder_id).contents()[1])
    retriever = make_retriever(settings, embedder)

    seen, stop = [], threading.Event()

    def read():
        deadline = time.monotonic() + 60
        while not stop.is_set() and time.monotonic() < deadline and len(seen) < 500:
            seen.append(retriever.search("cuánto cuesta la fibra al mes?"))

    reader = threading.Thread(target=read)
    reader.start()
    for version in versions[1:] + versions[:1] + versions[1:]:
        (docs / "precios.md").write_text(version)
        report = ingest([docs], index, embedder)
        assert report.updated == ["precios.md"]
        valid_texts |= set(index.contents()[1])
    stop.set()
    reader.join(timeout=60)

    assert seen, "the reader never ran"
    assert all(hits and hits[0].source == "precios.md" for hits in seen)  # never missing
    assert all(h.text in valid_texts for hits in seen for h in hits)  # only texts of a complete version


def test_a_large_index_is_read_whole_in_pages(tmp_path):
    """chromadb 1.5.9 refuses one `get` of every chunk of a collection over ~32,766 ("too many SQL
    variables"); the retriever's snapshot, ingestion and the admin command read it in pages."""
    settings = load_settings(_env_file=None, validate_twilio_signature=False, chroma_path=tmp_path)
    index = open_index(settings, "test-embedder")
    chunks = [Chunk(f"doc-{n // 10}.md#{n}", f"texto {n}", {"source": f"doc-{n // 10}.md"}) for n in range(33_000)]
    index.add(chunks, [[0.6, 0.8]] * len(chunks))  # tiny vectors: the reading is under test

    ids, texts, metadatas = index.contents()

    assert len(ids) == len(set(ids)) == 33_000 and set(texts) == {c.text for c in chunks}
    assert len(metadatas) == 33_000 and len(index.metadata_by_source()) == 3_300
