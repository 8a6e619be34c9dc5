"""Ingestion end to end: real files of every supported format, loaded, split, embedded with the
real E5 model and stored in a real Chroma folder; incremental re-runs; the command-line script.

Fixture documents are built here in tmp folders and kept small (the real model embeds a few
chunks per second); one module-scoped ingest is shared by the per-format assertions.
"""
from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from langchain_core.embeddings import Embeddings

from rag.ingest import ingest
from rag.load import SourceFile, excluded, load_file
from rag.retrieve import Retriever
from rag.split import CHUNK_CHARS, split_documents
from rag.store import EmbedderMismatch, KnowledgeIndex, open_client
from tests.processes import free_port

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = "scripts/ingest_docs.py"
COLLECTION = "test-collection"
CORPUS = ROOT.parent / "shared" / "corpus" / "cuidadodesalud" / "_posts"


# --------------------------------------------------------------------------- helpers


class CountingEmbeddings(Embeddings):
    """A spy around the real embedder: delegates every call and records the texts it embedded."""

    def __init__(self, inner: Embeddings):
        self.inner = inner
        self.embedder_id = inner.embedder_id
        self.texts: list[str] = []

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.texts.extend(texts)
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)

    def reset(self) -> None:
        self.texts.clear()


def make_pdf(pages: list[list[str]]) -> bytes:
    """A minimal valid PDF: one page per list of lines, Helvetica (WinAnsi, so Spanish accents
    work), with a correct cross-reference table."""
    n = len(pages)
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(n))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {n} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    for i, lines in enumerate(pages):
        ops = ["BT", "/F1 12 Tf", "14 TL", "72 720 Td"]
        for line in lines:
            escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
            ops.append(f"({escaped}) Tj T*")
        ops.append("ET")
        stream = "\n".join(ops).encode("cp1252")
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {5 + 2 * i} 0 R >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def make_docx(path: Path, paragraphs: list[str]) -> None:
    """A minimal valid .docx (the three parts Word needs), one <w:p> per paragraph."""
    ns = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
    body = "".join(f"<w:p><w:r><w:t>{p}</w:t></w:r></w:p>" for p in paragraphs)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/word/document.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>',
        )
        archive.writestr(
            "_rels/.rels",
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
            'relationships/officeDocument" Target="word/document.xml"/></Relationships>',
        )
        archive.writestr(
            "word/document.xml",
            f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document {ns}><w:body>{body}</w:body></w:document>',
        )


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def new_index(path: Path, embedder_id: str) -> KnowledgeIndex:
    return KnowledgeIndex(open_client(path=path), COLLECTION, embedder_id)


def stored(path: Path, collection: str = COLLECTION) -> list[tuple[str, dict]]:
    """Every (document text, metadata) in the collection, read back through Chroma's own API."""
    result = open_client(path=path).get_collection(collection).get(include=["documents", "metadatas"])
    return list(zip(result["documents"], result["metadatas"]))


def search(index: KnowledgeIndex, embedder, question: str, k: int = 3):
    hits = Retriever(index, embedder, k, threshold=0.0).search(question)
    assert hits, f"no hits for {question!r}"
    return hits


def run_script(*args: str, chroma_path: Path, **settings: str) -> subprocess.CompletedProcess:
    """The script with `settings` (environment variables); by default no database is in reach, so a
    developer's own MongoDB never has its knowledge gaps re-checked against a test index."""
    env = dict(os.environ)
    env.update(
        CHROMA_PATH=str(chroma_path),
        VALIDATE_TWILIO_SIGNATURE="false",
        # Pin what decides where and how the index is built, whatever a local .env says.
        CHROMA_URL="",
        CHROMA_COLLECTION="knowledge",
        EMBEDDER="e5",
        EMBEDDER_THREADS="2",
        MONGODB_URI=f"mongodb://127.0.0.1:{free_port()}/none?directConnection=true",
        MONGODB_TIMEOUT_SECONDS="0.5",
    )
    env.update(settings)
    return subprocess.run(
        [sys.executable, SCRIPT, *args, "--quiet"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180,
    )


# --------------------------------------------------------------------------- the shared knowledge base

PLANES_MD = """---
title: Guía de planes de Fibra Clara
autor: Ana
tags: [planes, precios]
---
# Planes

Fibra Clara ofrece planes de fibra y de móvil para hogares.

## Fibra

La fibra de 600 megas cuesta treinta euros al mes e incluye el router wifi sin coste.

## Móvil

La tarifa móvil ilimitada incluye llamadas sin límite y cincuenta gigas de datos.
"""

INSTALACION_MD = """# Instalación

El técnico instala la fibra en su domicilio en un plazo máximo de siete días laborables.
"""

AVERIAS_TXT = """Averías frecuentes

Si se corta la conexión a internet, reinicie el router desenchufándolo durante treinta segundos.
"""

ROAMING_HTML = """<!DOCTYPE html>
<html>
<head>
  <meta charset="utf-8">
  <title>Roaming en Europa</title>
  <style>body { font-family: sans-serif; }</style>
</head>
<body>
  <h1>Viajar con su móvil</h1>
  <p>Dentro de la Unión Europea el <b>roaming</b> no tiene ningún coste adicional para nuestros clientes.</p>
</body>
</html>
"""

PDF_PAGES = [
    ["Garantía de los equipos", "El router tiene una garantía de dos años desde la fecha de compra."],
    ["Devoluciones", "Para devolver el decodificador de televisión use la etiqueta de envío gratuito."],
]

DOCX_PARAGRAPHS = [
    "Condiciones del contrato",
    "El contrato tiene una permanencia de doce meses y la penalización por baja anticipada es de cien euros.",
]


# Excel's "CSV" on Spanish Windows: ';'-separated, cp1252, CRLF. Row 3 is empty and row 4 has no
# answer (both skipped); a quoted answer holds the separator; a trailing empty cell is harmless.
FAQ_CSV = """Pregunta;Respuesta;Categoría
¿Puedo pagar la factura con tarjeta?;Sí, de crédito o débito, desde el área de clientes.;Facturación
¿Cómo cambio mi correo electrónico?;"Escríbanos desde el área de clientes; el cambio es inmediato.";Cuenta
;;
¿Tienen tienda en Cuenca?;;Tiendas
¿Conservo mi número si vengo de otra compañía?;Sí, la portabilidad es gratuita y tarda un día laborable.;Móvil;
"""


def build_kb(folder: Path) -> Path:
    write(folder / "planes.md", PLANES_MD)
    write(folder / "sub" / "instalacion.md", INSTALACION_MD)
    write(folder / "averias.txt", AVERIAS_TXT)
    write(folder / "roaming.html", ROAMING_HTML)
    (folder / "garantia.pdf").write_bytes(make_pdf(PDF_PAGES))
    make_docx(folder / "contrato.docx", DOCX_PARAGRAPHS)
    (folder / "faq.csv").write_bytes(FAQ_CSV.replace("\n", "\r\n").encode("cp1252"))
    write(folder / "notas.json", '{"no": "soportado"}\n')  # unsupported suffix: ignored
    return folder


KB_SOURCES = ["averias.txt", "contrato.docx", "faq.csv", "garantia.pdf", "planes.md", "roaming.html",
              "sub/instalacion.md"]


@pytest.fixture(scope="module")
def kb(tmp_path_factory, embedder):
    """The knowledge base above, ingested once into a fresh Chroma folder."""
    folder = build_kb(tmp_path_factory.mktemp("kb"))
    chroma = tmp_path_factory.mktemp("kb-chroma")
    spy = CountingEmbeddings(embedder)
    index = new_index(chroma, embedder.embedder_id)
    report = ingest([folder], index, spy)
    return {"folder": folder, "chroma": chroma, "index": index, "report": report, "spy": spy}


def chunks_of(kb, source: str) -> list[tuple[str, dict]]:
    return [(text, meta) for text, meta in stored(kb["chroma"]) if meta["source"] == source]


# --------------------------------------------------------------------------- 1. every format, retrievable


def test_every_supported_file_is_ingested_and_nothing_else(kb):
    report = kb["report"]
    assert sorted(report.added) == KB_SOURCES
    assert report.failures == [] and report.updated == [] and report.unchanged == [] and report.removed == []
    grouped = kb["index"].ids_by_source()
    assert sorted(grouped) == KB_SOURCES
    assert all(grouped[source] for source in KB_SOURCES)
    assert report.chunks_embedded == kb["index"].count() == len(kb["spy"].texts)
    assert report.summary().startswith(f"files: {len(KB_SOURCES)} added, 0 updated, 0 unchanged, 0 removed, 0 empty (skipped), 0 failed")


@pytest.mark.parametrize(
    "question, source",
    [
        ("¿Cuánto cuesta la fibra de 600 megas al mes?", "planes.md"),
        ("¿Cuántos días tarda el técnico en instalar la fibra en casa?", "sub/instalacion.md"),
        ("¿Qué hago si se me corta internet?", "averias.txt"),
        ("¿Tiene coste el roaming en la Unión Europea?", "roaming.html"),
        ("¿Cuántos años de garantía tiene el router?", "garantia.pdf"),
        ("¿Cuánto es la penalización si me doy de baja antes de los doce meses?", "contrato.docx"),
        ("¿Se puede abonar el recibo con una tarjeta de débito?", "faq.csv"),
    ],
)
def test_each_format_is_retrievable(kb, embedder, question, source):
    hits = search(kb["index"], embedder, question)
    assert hits[0].source == source, [(h.source, h.text[:60]) for h in hits]


def test_markdown_front_matter_is_metadata_not_text(kb):
    chunks = chunks_of(kb, "planes.md")
    assert len(chunks) >= 2
    for text, meta in chunks:
        assert meta["title"] == "Guía de planes de Fibra Clara"
        assert meta["autor"] == "Ana"
        assert "tags" not in meta  # a list cannot be Chroma metadata: dropped, not stringified
        assert "---" not in text and "title:" not in text and "autor:" not in text
    texts = " ".join(text for text, _ in chunks)
    assert "treinta euros al mes" in texts and "cincuenta gigas" in texts


def test_markdown_heading_path_and_nested_source(kb):
    by_text = {text: meta for text, meta in chunks_of(kb, "planes.md")}
    fibra = next(meta for text, meta in by_text.items() if "600 megas" in text)
    movil = next(meta for text, meta in by_text.items() if "cincuenta gigas" in text)
    assert fibra["headings"] == "Planes > Fibra"
    assert movil["headings"] == "Planes > Móvil"

    ((text, meta),) = chunks_of(kb, "sub/instalacion.md")
    assert meta["source"] == "sub/instalacion.md"  # relative to the folder given, POSIX separators
    assert meta["title"] == "Instalación"  # no front matter: the first heading
    assert meta["headings"] == "Instalación"
    assert "siete días laborables" in text


def test_plain_text(kb):
    ((text, meta),) = chunks_of(kb, "averias.txt")
    assert "treinta segundos" in text
    assert meta["title"] == "averias"  # no heading: the file name
    assert meta["headings"] == ""


def test_html_title_and_text_without_tags(kb):
    chunks = chunks_of(kb, "roaming.html")
    texts = " ".join(text for text, _ in chunks)
    assert all(meta["title"] == "Roaming en Europa" for _, meta in chunks)
    assert "roaming no tiene ningún coste adicional" in " ".join(texts.split())
    assert "Viajar con su móvil" in texts
    assert "<" not in texts and ">" not in texts
    assert "font-family" not in texts  # style sheets are not text


def test_pdf_pages_are_one_based(kb, embedder):
    chunks = chunks_of(kb, "garantia.pdf")
    pages = sorted(meta["page"] for _, meta in chunks)
    assert pages == [1, 2]
    for text, meta in chunks:
        assert meta["title"] == "garantia"
        expected = "garantía de dos años" if meta["page"] == 1 else "etiqueta de envío gratuito"
        assert expected in text
    hit = search(kb["index"], embedder, "¿Cómo devuelvo el decodificador de la tele?")[0]
    assert (hit.source, hit.metadata["page"]) == ("garantia.pdf", 2)


def test_docx_paragraphs(kb):
    chunks = chunks_of(kb, "contrato.docx")
    texts = " ".join(text for text, _ in chunks)
    assert "Condiciones del contrato" in texts
    assert "permanencia de doce meses" in texts
    assert all(meta["title"] == "contrato" for _, meta in chunks)


def test_faq_table_one_chunk_per_answered_row(kb):
    rows = {meta["row"]: (text, meta) for text, meta in chunks_of(kb, "faq.csv")}
    assert sorted(rows) == [1, 2, 5]  # numbered as in the sheet: the empty row and the unanswered one skipped
    text, meta = rows[2]
    question = "¿Cómo cambio mi correo electrónico?"
    answer = "Escríbanos desde el área de clientes; el cambio es inmediato."
    assert text == f"{question}\n{answer}"
    assert meta["title"] == question
    assert meta["Categoría"] == "Cuenta"
    assert [rows[n][1]["Categoría"] for n in (1, 5)] == ["Facturación", "Móvil"]
    assert all(text.startswith(meta["title"] + "\n") and "Categoría" not in text for text, meta in rows.values())


def test_faq_in_utf8_with_bom_and_a_quoted_question(tmp_path):
    table = tmp_path / "faq.csv"
    table.write_bytes("\ufeffPREGUNTA ,Respuesta,Categoría\n"
                      '"¿Cuánto cuesta, al mes, el router?",Nada: va incluido.,Equipos\n'.encode("utf-8"))
    (document,) = load_file(SourceFile(table, "faq.csv"))
    assert document.page_content == "¿Cuánto cuesta, al mes, el router?\nNada: va incluido."
    assert document.metadata == {"Categoría": "Equipos", "title": "¿Cuánto cuesta, al mes, el router?", "row": 1,
                                 "source": "faq.csv"}


@pytest.mark.parametrize("header", ["Q\tA", "Pergunta\tResposta", "QUESTION\tanswer", "Pregúnta\tRespuesta"])
def test_faq_columns_are_recognised_without_case_or_accents(tmp_path, header):
    table = write(tmp_path / "faq.tsv", f"{header}\n¿Abren hoy?\tSí, hasta las ocho.\n")
    (document,) = load_file(SourceFile(table, "faq.tsv"))
    assert document.page_content == "¿Abren hoy?\nSí, hasta las ocho."
    assert document.metadata["title"] == "¿Abren hoy?"


def test_a_table_without_question_and_answer_columns(tmp_path):
    table = write(tmp_path / "tarifas.csv",
                  "Tarifa|Precio|Notas\nFibra 600|30 €|\n\nMóvil ilimitado|20 €|Sin permanencia\n")
    documents = load_file(SourceFile(table, "tarifas.csv"))
    assert [d.page_content for d in documents] == [
        "Tarifa: Fibra 600\nPrecio: 30 €",
        "Tarifa: Móvil ilimitado\nPrecio: 20 €\nNotas: Sin permanencia",
    ]
    assert [(d.metadata["row"], d.metadata["title"]) for d in documents] == [(1, "tarifas"), (3, "tarifas")]


def test_tables_without_a_usable_row_count_as_empty(tmp_path, embedder):
    folder = tmp_path / "kb"
    write(folder / "vacia.csv", "")
    write(folder / "cabecera.csv", "pregunta;respuesta;categoría\n")
    write(folder / "sin-respuestas.csv", "pregunta;respuesta\n¿Abren los domingos?;\n;\n")
    report = ingest([folder], new_index(tmp_path / "chroma", embedder.embedder_id), embedder, dry_run=True)
    assert sorted(report.empty) == ["cabecera.csv", "sin-respuestas.csv", "vacia.csv"]
    assert report.added == report.failures == []


def test_a_long_faq_answer_is_split_with_its_question_on_every_piece(tmp_path):
    question = "¿Qué necesito para darme de alta?"
    answer = " ".join(f"Paso {n}: suba el documento {n} al área de clientes y espere el aviso." for n in range(1, 40))
    table = write(tmp_path / "alta.csv", f'pregunta,respuesta\n{question},"{answer}"\n')
    chunks = split_documents(load_file(SourceFile(table, "alta.csv")), "alta.csv")
    assert len(chunks) > 1
    for chunk in chunks:
        assert chunk.text.startswith(question + "\n") and chunk.text != question
        assert len(chunk.text) <= len(question) + 1 + CHUNK_CHARS
    texts = " ".join(chunk.text for chunk in chunks)
    assert all(f"Paso {n}:" in texts for n in range(1, 40))


def test_reordered_faq_rows_are_not_embedded_again_but_get_their_new_row_numbers(tmp_path, embedder):
    """Chunk ids hash the text, not the row number: moving rows embeds nothing, and the stored
    `row` follows the row."""
    rows = ["¿Abren los sábados?;Sí, de diez a dos.", "¿Hay aparcamiento?;Sí, gratuito para clientes."]
    table = write(tmp_path / "kb" / "faq.csv", "pregunta;respuesta\n" + "\n".join(rows) + "\n")
    spy = CountingEmbeddings(embedder)
    index = new_index(tmp_path / "chroma", embedder.embedder_id)
    ingest([table.parent], index, spy)
    before = index.ids_by_source()["faq.csv"]
    assert len(before) == len(spy.texts) == 2

    table.write_text("pregunta;respuesta\n;\n" + "\n".join(reversed(rows)) + "\n", encoding="utf-8")
    spy.reset()
    report = ingest([table.parent], index, spy)
    assert report.updated == ["faq.csv"] and spy.texts == []
    assert index.ids_by_source()["faq.csv"] == before
    rows = {meta["title"]: meta["row"] for _, meta in stored(tmp_path / "chroma")}
    assert rows == {"¿Hay aparcamiento?": 2, "¿Abren los sábados?": 3}  # row 1 is now empty

    assert ingest([table.parent], index, spy).unchanged == ["faq.csv"]  # and then nothing to do


# --------------------------------------------------------------------------- 3. unreadable files


def build_broken(folder: Path) -> Path:
    write(folder / "bueno.md", "# Horario\n\nLa tienda abre de lunes a sábado de diez a ocho.\n")
    (folder / "broken.pdf").write_bytes(b"%this is not a pdf\x00\x01\x02" * 20)
    (folder / "broken.docx").write_bytes(b"PK? no, just plain bytes pretending to be Word")
    (folder / "broken.csv").write_bytes(b"PK\x03\x04\x14\x00\x06\x00" + bytes(range(256)))  # a workbook renamed
    return folder


def test_unreadable_files_are_reported_and_the_rest_ingested(tmp_path, embedder):
    folder = build_broken(tmp_path / "kb")
    index = new_index(tmp_path / "chroma", embedder.embedder_id)
    report = ingest([folder], index, embedder)

    assert report.added == ["bueno.md"]
    failures = {f.source: f.reason for f in report.failures}
    assert sorted(failures) == ["broken.csv", "broken.docx", "broken.pdf"]
    assert all(reason.strip() for reason in failures.values())
    assert "zip" in failures["broken.docx"].lower()
    assert "binary data, not a CSV text file" in failures["broken.csv"]
    assert set(index.ids_by_source()) == {"bueno.md"}
    assert "FAILED broken.pdf: " in report.summary() and "FAILED broken.docx: " in report.summary()
    assert "3 failed" in report.summary()


def test_a_csv_cut_wrong_is_an_error_naming_the_problem(tmp_path):
    unquoted = write(tmp_path / "a.csv", "pregunta;respuesta\n¿Puedo pagar con tarjeta?;Sí; sin comisión\n")
    with pytest.raises(ValueError, match="row 1 has 3 cells but the header names 2 columns"):
        load_file(SourceFile(unquoted, "a.csv"))
    open_quote = write(tmp_path / "b.csv", 'pregunta;respuesta\n¿Pago?;"Sí, con tarjeta\n¿Otra?;No\n')
    with pytest.raises(ValueError, match="malformed CSV at line 3: unexpected end of data"):
        load_file(SourceFile(open_quote, "b.csv"))


def test_a_file_that_becomes_unreadable_keeps_its_last_good_chunks(tmp_path, embedder):
    folder = tmp_path / "kb"
    folder.mkdir()
    (folder / "manual.pdf").write_bytes(make_pdf(PDF_PAGES))
    index = new_index(tmp_path / "chroma", embedder.embedder_id)
    ingest([folder], index, embedder)
    before = index.ids_by_source()["manual.pdf"]

    (folder / "manual.pdf").write_bytes(b"truncated upload")
    report = ingest([folder], index, embedder, prune=True)
    assert [f.source for f in report.failures] == ["manual.pdf"]
    assert report.removed == [] and report.chunks_removed == 0
    assert index.ids_by_source()["manual.pdf"] == before


def test_script_exits_1_and_names_the_unreadable_files(tmp_path):
    folder = build_broken(tmp_path / "kb")
    result = run_script(str(folder), chroma_path=tmp_path / "chroma")
    assert result.returncode == 1, result.stderr
    assert "FAILED broken.pdf: " in result.stdout
    assert "FAILED broken.docx: " in result.stdout
    assert "FAILED broken.csv: " in result.stdout
    assert "files: 1 added, 0 updated, 0 unchanged, 0 removed, 0 empty (skipped), 3 failed" in result.stdout


def test_script_rejects_a_missing_path(tmp_path):
    missing = tmp_path / "no-existe"
    result = run_script(str(missing), chroma_path=tmp_path / "chroma")
    assert result.returncode == 2
    assert "no such file or folder" in result.stderr and str(missing) in result.stderr
    assert not (tmp_path / "chroma").exists()  # refused before touching the index


# --------------------------------------------------------------------------- 4. incremental, idempotent

SECTIONS_MD = """# Facturación

La factura se emite el día uno de cada mes y se envía por correo electrónico.

## Pagos

El recibo se cobra por domiciliación bancaria cinco días después de emitir la factura.

## Reclamaciones

Puede reclamar un cargo indebido durante los tres meses siguientes a la factura.
"""


def build_incremental(folder: Path) -> Path:
    write(folder / "facturas.md", SECTIONS_MD)
    write(folder / "tienda.txt", "La tienda de la calle Mayor cierra los domingos.\n")
    write(folder / "sub" / "wifi.md", "# Wifi\n\nLa contraseña del wifi está en la pegatina del router.\n")
    return folder


def test_reingest_is_incremental_idempotent_and_prunes_on_request(tmp_path, embedder):
    """One folder through its life: first ingest, unchanged re-run, a one-paragraph edit, a dry
    run, a deletion without and then with prune. The spy counts what the real model embedded."""
    folder = build_incremental(tmp_path / "kb")
    chroma = tmp_path / "chroma"
    spy = CountingEmbeddings(embedder)
    index = new_index(chroma, embedder.embedder_id)
    sources = ["facturas.md", "sub/wifi.md", "tienda.txt"]

    first = ingest([folder], index, spy)
    assert sorted(first.added) == sources
    assert len(index.ids_by_source()["facturas.md"]) == 3  # one chunk per section
    assert first.chunks_embedded == len(spy.texts) == index.count() == 5
    snapshot = index.ids_by_source()

    # Unchanged: nothing embedded, nothing written.
    spy.reset()
    second = ingest([folder], index, spy)
    assert sorted(second.unchanged) == sources
    assert second.added == second.updated == second.removed == second.failures == []
    assert second.chunks_embedded == second.chunks_removed == 0 and spy.texts == []
    assert index.count() == 5 and index.ids_by_source() == snapshot

    # One paragraph edited: only the chunk holding it is re-embedded; the old one is gone.
    old = "cinco días después de emitir la factura"
    new = "diez días después de emitir la factura"
    (folder / "facturas.md").write_text(SECTIONS_MD.replace(old, new), encoding="utf-8")
    spy.reset()
    third = ingest([folder], index, spy)
    assert third.updated == ["facturas.md"]
    assert sorted(third.unchanged) == ["sub/wifi.md", "tienda.txt"]
    assert third.chunks_embedded == 1 and third.chunks_removed == 1
    assert len(spy.texts) == 1 and new in spy.texts[0]
    after = index.ids_by_source()
    assert len(after["facturas.md"]) == 3 and len(after["facturas.md"] & snapshot["facturas.md"]) == 2
    assert {k: v for k, v in after.items() if k != "facturas.md"} == {
        k: v for k, v in snapshot.items() if k != "facturas.md"
    }
    documents = [text for text, _ in stored(chroma)]
    assert index.count() == len(documents) == 5
    assert not any(old in text for text in documents)
    assert sum(new in text for text in documents) == 1
    hit = search(index, embedder, "¿Cuántos días después de la factura se cobra el recibo?")[0]
    assert hit.source == "facturas.md" and new in hit.text

    # A file edited, one deleted, one new. Dry run: reports what would change, changes nothing.
    snapshot, documents = index.ids_by_source(), sorted(text for text, _ in stored(chroma))
    write(folder / "tienda.txt", "La tienda de la calle Mayor abre también los domingos por la mañana.\n")
    (folder / "sub" / "wifi.md").unlink()
    write(folder / "nuevo.md", "# Nuevo\n\nEl servicio de televisión incluye cien canales.\n")
    spy.reset()
    dry = ingest([folder], index, spy, prune=True, dry_run=True)
    assert dry.added == ["nuevo.md"] and dry.updated == ["tienda.txt"] and dry.unchanged == ["facturas.md"]
    assert dry.removed == ["sub/wifi.md"]
    assert dry.chunks_embedded == 2 and dry.chunks_removed == 2  # tienda's old chunk + wifi's
    assert spy.texts == []
    assert index.ids_by_source() == snapshot
    assert sorted(text for text, _ in stored(chroma)) == documents

    # Without prune, the deleted file's chunks stay.
    spy.reset()
    kept = ingest([folder], index, spy)
    assert kept.added == ["nuevo.md"] and kept.updated == ["tienda.txt"] and kept.removed == []
    assert len(spy.texts) == 2
    assert index.ids_by_source()["sub/wifi.md"] == snapshot["sub/wifi.md"]

    # With prune, they go.
    spy.reset()
    pruned = ingest([folder], index, spy, prune=True)
    assert pruned.removed == ["sub/wifi.md"] and pruned.chunks_removed == 1
    assert sorted(pruned.unchanged) == ["facturas.md", "nuevo.md", "tienda.txt"]
    assert spy.texts == []
    assert "sub/wifi.md" not in index.ids_by_source()
    assert not any("pegatina del router" in text for text, _ in stored(chroma))


def test_exclude_globs_skip_files(tmp_path, embedder):
    folder = build_incremental(tmp_path / "kb")
    index = new_index(tmp_path / "chroma", embedder.embedder_id)
    everything = ingest([folder], index, embedder, dry_run=True)
    assert sorted(everything.added) == ["facturas.md", "sub/wifi.md", "tienda.txt"]
    report = ingest([folder], index, embedder, exclude=("sub/*", "*.txt"), dry_run=True)
    assert report.added == ["facturas.md"] and report.unchanged == report.failures == []
    # (the command line's --exclude is exercised in the --reset run below)


# --------------------------------------------------------------------------- 5. embedder mismatch, --reset


def test_index_refuses_another_embedder_and_reset_rebuilds_it(tmp_path, embedder):
    chroma = tmp_path / "chroma"
    other = KnowledgeIndex(open_client(path=chroma), "knowledge", "test:another-embedder")
    (foreign,) = ingest([write(tmp_path / "viejo.md", "# Viejo\n\nTexto de otro modelo.\n")], other,
                      _TinyEmbeddings()).added
    assert other.count() == 1

    with pytest.raises(EmbedderMismatch) as refused:
        KnowledgeIndex(open_client(path=chroma), "knowledge", embedder.embedder_id)
    message = str(refused.value)
    assert "test:another-embedder" in message and embedder.embedder_id in message
    assert "re-ingest" in message and "--reset" in message

    folder = tmp_path / "kb"
    write(folder / "bueno.md", "# Horario\n\nLa tienda abre de lunes a sábado de diez a ocho.\n")
    write(folder / "borradores" / "idea.md", "# Idea\n\nUn texto que aún no debe publicarse.\n")
    without_reset = run_script(str(folder), chroma_path=chroma)
    assert without_reset.returncode != 0
    assert "--reset" in without_reset.stderr

    # With --reset (and no unreadable file) it rebuilds, exits 0 and prints the summary.
    rebuilt = run_script(str(folder), "--reset", "--exclude", "borradores/*", chroma_path=chroma)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "files: 1 added, 0 updated, 0 unchanged, 0 removed, 0 empty (skipped), 0 failed" in rebuilt.stdout
    assert "chunks: 1 embedded, 0 removed" in rebuilt.stdout
    assert f"index now holds 1 chunks ({embedder.embedder_id})" in rebuilt.stdout
    index = KnowledgeIndex(open_client(path=chroma), "knowledge", embedder.embedder_id)
    assert set(index.ids_by_source()) == {"bueno.md"} and foreign not in index.ids_by_source()


class _TinyEmbeddings(Embeddings):
    """Stands in for 'some other embedding model' (3-dimensional), to build a foreign index."""

    embedder_id = "test:another-embedder"

    def embed_documents(self, texts):
        return [[1.0, float(len(t)), 0.5] for t in texts]

    def embed_query(self, text):
        return [1.0, float(len(text)), 0.5]


# --------------------------------------------------------------------------- 6. a slice of the real corpus

CORPUS_FILES = [
    "quick-answers/es/0001-01-01-qat-blurb-chip.md",
    "quick-answers/es/0001-01-01-qat-blurb-marketplace.md",
    "quick-answers/es/0001-01-01-qat-blurb-medicaid.md",
    "quick-answers/es/0001-01-01-qat-blurb-savings.md",
    "quick-answers/es/0001-01-01-qat-blurb-veterans.md",
]


def test_real_corpus_slice(tmp_path, embedder):
    paths = [CORPUS / name for name in CORPUS_FILES]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        pytest.skip(f"shared corpus not available here: {', '.join(missing)}")
    index = new_index(tmp_path / "chroma", embedder.embedder_id)
    report = ingest(paths, index, embedder)

    names = sorted(p.name for p in paths)  # files given directly are named by their file name
    assert report.failures == []
    assert sorted(report.added) == names
    grouped = index.ids_by_source()
    assert sorted(grouped) == names and all(len(grouped[name]) >= 1 for name in names)
    for text, meta in stored(tmp_path / "chroma"):
        assert "lang: es" not in text and "qat-blurb" not in text  # front matter stays out of the text
        if meta["source"] == "0001-01-01-qat-blurb-chip.md":
            assert meta["title"].startswith("El Programa de Seguro Médico para los Niños")

    hits = search(index, embedder, "Soy veterano del ejército, ¿puedo recibir beneficios médicos del VA?")
    assert "0001-01-01-qat-blurb-veterans.md" in [h.source for h in hits]


# --------------------------------------------------------------------------- regressions


def test_compact_html_keeps_words_apart(tmp_path):
    page = write(tmp_path / "p.html", "<html><head><title>Precios</title></head><body>"
                 "<h1>Fibra</h1><p>La fibra cuesta treinta euros.</p><ul><li>Router</li><li>Wifi</li></ul></body></html>")
    (document,) = load_file(SourceFile(page, "p.html"))
    words = document.page_content.split()
    assert "FibraLa" not in document.page_content and "RouterWifi" not in document.page_content, words


def test_a_file_without_text_is_not_re_added_every_run(tmp_path, embedder):
    folder = tmp_path / "kb"
    write(folder / "vacio.md", "---\ntitle: Vacío\n---\n\n")
    index = new_index(tmp_path / "chroma", embedder.embedder_id)
    ingest([folder], index, embedder)
    again = ingest([folder], index, embedder)
    assert "vacio.md" not in again.added
    assert again.empty == ["vacio.md"] and again.failures == []


def test_a_file_emptied_loses_its_old_chunks(tmp_path, embedder):
    folder = tmp_path / "kb"
    page = write(folder / "nota.md", "# Nota\n\nLa oficina abre a las nueve.\n")
    index = new_index(tmp_path / "chroma", embedder.embedder_id)
    ingest([folder], index, embedder)
    assert index.ids_by_source().get("nota.md")
    page.write_text("---\ntitle: Nota\n---\n")
    report = ingest([folder], index, embedder)
    assert report.empty == ["nota.md"] and report.chunks_removed == 1
    assert "nota.md" not in index.ids_by_source()


def test_front_matter_page_is_not_shifted(tmp_path):
    note = write(tmp_path / "nota.md", "---\npage: 3\n---\n# Nota\n\nTexto de la nota.\n")
    (document,) = load_file(SourceFile(note, "nota.md"))
    assert document.metadata["page"] == 3


def test_same_name_in_two_folders_is_not_silently_dropped(tmp_path, embedder):
    write(tmp_path / "kb1" / "faq.md", "# FAQ\n\nLa tienda abre a las diez.\n")
    write(tmp_path / "kb2" / "faq.md", "# FAQ\n\nEl soporte técnico atiende por teléfono.\n")
    index = new_index(tmp_path / "chroma", embedder.embedder_id)
    report = ingest([tmp_path / "kb1", tmp_path / "kb2"], index, embedder, dry_run=True)
    assert len(report.added) + len(report.failures) == 2, report  # each file ingested or reported


def test_exclude_glob_covers_deeper_folders_and_file_names():
    assert excluded("drafts/2024/x.md", ("drafts/*",))
    assert excluded("sub/SOURCE.md", ("SOURCE.md",))
    assert excluded("a/b/c.pdf", ("*.pdf",))
    assert not excluded("published/x.md", ("drafts/*", "*.pdf"))


def test_html_in_its_declared_encoding(tmp_path):
    page = tmp_path / "latin.html"
    page.write_bytes('<html><head><meta charset="iso-8859-1"><title>Señal</title></head>'
                     '<body><p>Atención al cliente en España</p></body></html>'.encode("latin-1"))
    (document,) = load_file(SourceFile(page, "latin.html"))
    assert "Atención al cliente en España" in document.page_content


def test_prune_with_a_single_file_is_refused(tmp_path):
    note = write(tmp_path / "nota.md", "# Nota\n\nTexto.\n")
    result = run_script(str(note), "--prune", chroma_path=tmp_path / "chroma")
    assert result.returncode == 2 and "--prune needs folders" in result.stderr


def test_embedder_mismatch_is_a_clear_error_not_a_traceback(tmp_path, embedder):
    KnowledgeIndex(open_client(path=tmp_path / "chroma"), "knowledge", "another:embedder")
    note = write(tmp_path / "kb" / "nota.md", "# Nota\n\nTexto.\n")
    result = run_script(str(note.parent), chroma_path=tmp_path / "chroma")
    assert result.returncode == 2
    assert result.stderr.startswith("error:") and "--reset" in result.stderr and "Traceback" not in result.stderr


def test_text_in_cp1252_or_with_a_bom_keeps_accents_and_front_matter(tmp_path):
    (tmp_path / "latin.md").write_bytes("# Facturación\nEl recibo llega el día 5.".encode("cp1252"))
    (tmp_path / "bom.md").write_bytes("\ufeff---\ntitle: Horario\n---\nAbrimos a las 9.".encode("utf-8"))
    (latin,) = load_file(SourceFile(tmp_path / "latin.md", "latin.md"))
    (bom,) = load_file(SourceFile(tmp_path / "bom.md", "bom.md"))
    assert "Facturación" in latin.page_content and "día" in latin.page_content
    assert bom.metadata["title"] == "Horario" and bom.page_content.strip() == "Abrimos a las 9."
