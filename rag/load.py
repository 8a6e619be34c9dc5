"""Load: turn files and folders into LangChain documents with their source metadata."""
from __future__ import annotations

import csv
import io
import warnings
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path

import frontmatter
from bs4 import UnicodeDammit
from langchain_core.documents import Document

from rag.language import plain

with warnings.catch_warnings():
    # langchain-community announces its sunset on import; its loaders are still the maintained ones.
    warnings.simplefilter("ignore", DeprecationWarning)
    from langchain_community.document_loaders import (
        BSHTMLLoader,
        Docx2txtLoader,
        PyPDFLoader,
    )

TEXT_SUFFIXES = {".md", ".markdown", ".txt"}
TABLE_SUFFIXES = {".csv", ".tsv"}
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | TABLE_SUFFIXES | {".pdf", ".docx", ".html", ".htm"}
# Column names (compared without case or accents) that make a table an FAQ.
QUESTION_COLUMNS = {"question", "pregunta", "pergunta", "q"}
ANSWER_COLUMNS = {"answer", "respuesta", "resposta", "a"}


@dataclass
class SourceFile:
    """A file to ingest: where it is, and the stable name chunks carry as `source`."""

    path: Path
    source: str


class EmptyDocument(ValueError):
    """The file was read but holds no text (only front matter, a table with no usable row, or a
    scanned PDF)."""


@dataclass
class LoadFailure:
    source: str
    reason: str


def find_files(paths: list[Path], exclude: tuple[str, ...] = ()) -> tuple[list[SourceFile], list[LoadFailure]]:
    """Expand files and folders (recursively) into supported files, each named relative to the
    folder it was found under (a file given directly by its file name). Two files that would
    get the same name are a failure, not a silent overwrite."""
    found: dict[str, SourceFile] = {}
    clashes: list[LoadFailure] = []
    for root in paths:
        if root.is_dir():
            candidates = [(p, p.relative_to(root).as_posix()) for p in sorted(root.rglob("*"))]
        else:
            candidates = [(root, root.name)]
        for path, source in candidates:
            if not path.is_file() or path.suffix.lower() not in SUPPORTED_SUFFIXES or excluded(source, exclude):
                continue
            if source in found:
                clashes.append(LoadFailure(source, f"{path} has the same name as {found[source].path}: "
                                                   "ingest the folders separately or rename one"))
            else:
                found[source] = SourceFile(path=path, source=source)
    return list(found.values()), clashes


def excluded(source: str, patterns: tuple[str, ...]) -> bool:
    """A glob matches the relative path (`*` crosses folders: `drafts/*`) or the file name (`*.pdf`)."""
    name = source.rsplit("/", 1)[-1]
    return any(fnmatch(source, pattern) or fnmatch(name, pattern) for pattern in patterns)


def load_file(file: SourceFile) -> list[Document]:
    """Read one file into documents (one per PDF page, one per table row); raises on unreadable input."""
    suffix = file.path.suffix.lower()
    if suffix in TEXT_SUFFIXES:
        documents = _load_text(file.path)
    elif suffix == ".pdf":
        documents = PyPDFLoader(str(file.path)).load()
        for document in documents:
            document.metadata["page"] = int(document.metadata.get("page", 0)) + 1  # PyPDFLoader counts from 0
    elif suffix in TABLE_SUFFIXES:
        documents = _load_table(file.path)
    elif suffix == ".docx":
        documents = Docx2txtLoader(str(file.path)).load()
    else:
        documents = _load_html(file.path)
    for document in documents:
        document.metadata = _clean_metadata(document.metadata, file)
    documents = [d for d in documents if d.page_content.strip()]
    if not documents:
        raise EmptyDocument("no text (empty, only front matter, a table with no usable row, "
                            "or a scanned PDF without a text layer)")
    return documents


def _load_html(path: Path) -> list[Document]:
    """HTML in whatever encoding the page declares; block elements stay separate lines."""
    encoding = UnicodeDammit(path.read_bytes(), is_html=True).original_encoding or "utf-8"
    loader = BSHTMLLoader(str(path), open_encoding=encoding, bs_kwargs={"features": "html.parser"},
                          get_text_separator="\n")
    return loader.load()


def _load_text(path: Path) -> list[Document]:
    data = path.read_bytes()
    if b"\x00" in data:
        raise ValueError("binary data, not a text file")
    post = frontmatter.loads(_decode(data))
    metadata = {key: value for key, value in post.metadata.items() if _is_scalar(value)}
    metadata.setdefault("title", _first_heading(post.content) or path.stem)
    return [Document(page_content=post.content, metadata=metadata)]


def _load_table(path: Path) -> list[Document]:
    """One document per data row, `row` counting them from 1 as they follow the header. An FAQ
    (question and answer columns) gives the question then its answer, titled by the question, its
    other columns as metadata; any other table gives a "column: value" line per filled cell.
    Empty rows, and questions without an answer, come out empty and are dropped by `load_file`.
    Not LangChain's CSVLoader: it cannot sniff the separator, keeps a UTF-8 BOM in the first column
    name, and writes every column (empty ones too) as "name: value"."""
    header, *rows = _read_table(path) or [[]]
    header = [name or f"column {number}" for number, name in enumerate(header, 1)]
    question, answer = _find_column(header, QUESTION_COLUMNS), _find_column(header, ANSWER_COLUMNS)
    documents = []
    for number, cells in enumerate(rows, 1):
        if any(cells[len(header):]):
            raise ValueError(f"row {number} has {len(cells)} cells but the header names {len(header)} "
                             "columns (a separator inside a cell that is not quoted?)")
        record = dict(zip(header, cells))
        if question and answer:
            document = _faq_document(record, question, answer)
        else:
            lines = [f"{name}: {value}" for name, value in record.items() if value]
            document = Document(page_content="\n".join(lines))
        document.metadata["row"] = number
        documents.append(document)
    return documents


def _read_table(path: Path) -> list[list[str]]:
    """The rows of a CSV, cells stripped. Strict quoting: a quote left open would otherwise
    swallow the rest of the file into one cell without a word."""
    text = _decode(path.read_bytes())
    if "\x00" in text:
        raise ValueError("binary data, not a CSV text file (a spreadsheet renamed .csv? export it as CSV)")
    reader = csv.reader(io.StringIO(text, newline=None), delimiter=_delimiter(text), strict=True)
    try:
        return [[cell.strip() for cell in row] for row in reader]
    except csv.Error as exc:
        raise ValueError(f"malformed CSV at line {reader.line_num}: {exc} (check its quotes)") from exc


def _decode(data: bytes) -> str:
    """UTF-8 (with or without the BOM Excel's "CSV UTF-8" writes), else cp1252, what Excel's plain
    "CSV" writes on Spanish Windows. Fixed rather than guessed: charset detection misreads short
    files (charset-normalizer reads "¿Qué?;Sí" in cp1252 as cp1006)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _delimiter(text: str) -> str:
    """Sniffed from the header line alone: answers are prose full of commas and semicolons, the
    header holds only its separators. A single column has none (the sniffer gives up): a comma."""
    try:
        return csv.Sniffer().sniff(next(iter(text.splitlines()), ""), delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def _find_column(header: list[str], names: set[str]) -> str | None:
    """The first column whose name, ignoring case and accents, is one of `names`."""
    return next((column for column in header if plain(column) in names), None)


def _faq_document(record: dict[str, str], question: str, answer: str) -> Document:
    """The question then its answer; a question without an answer has nothing to say (empty)."""
    metadata = {name: value for name, value in record.items() if value and name not in (question, answer)}
    asked, answered = record.get(question, ""), record.get(answer, "")
    metadata["title"] = asked
    return Document(page_content=f"{asked}\n{answered}".strip() if answered else "", metadata=metadata)


def _clean_metadata(metadata: dict, file: SourceFile) -> dict:
    """Keep the scalar metadata Chroma can store, with a uniform `source`, `title` and `page`."""
    cleaned = {key: value for key, value in metadata.items() if _is_scalar(value)}
    cleaned["source"] = file.source
    cleaned["title"] = str(cleaned.get("title") or file.path.stem).strip()
    return cleaned


def _is_scalar(value) -> bool:
    return isinstance(value, (str, int, float, bool))


def _first_heading(markdown: str) -> str | None:
    for line in markdown.splitlines():
        if line.startswith("#"):
            return line.lstrip("#").strip() or None
    return None
