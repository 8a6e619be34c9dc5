"""Load: turn files and folders into LangChain documents with their source metadata."""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path

import frontmatter
from bs4 import UnicodeDammit
from langchain_core.documents import Document

with warnings.catch_warnings():
    # langchain-community announces its sunset on import; its loaders are still the maintained ones.
    warnings.simplefilter("ignore", DeprecationWarning)
    from langchain_community.document_loaders import (
        BSHTMLLoader,
        Docx2txtLoader,
        PyPDFLoader,
        TextLoader,
    )

TEXT_SUFFIXES = {".md", ".markdown", ".txt"}
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | {".pdf", ".docx", ".html", ".htm"}


@dataclass
class SourceFile:
    """A file to ingest: where it is, and the stable name chunks carry as `source`."""

    path: Path
    source: str


class EmptyDocument(ValueError):
    """The file was read but holds no text (only front matter, or a scanned PDF)."""


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
    """Read one file into documents (one per PDF page); raises on unreadable input."""
    suffix = file.path.suffix.lower()
    if suffix in TEXT_SUFFIXES:
        documents = _load_text(file.path)
    elif suffix == ".pdf":
        documents = PyPDFLoader(str(file.path)).load()
        for document in documents:
            document.metadata["page"] = int(document.metadata.get("page", 0)) + 1  # PyPDFLoader counts from 0
    elif suffix == ".docx":
        documents = Docx2txtLoader(str(file.path)).load()
    else:
        documents = _load_html(file.path)
    for document in documents:
        document.metadata = _clean_metadata(document.metadata, file)
    documents = [d for d in documents if d.page_content.strip()]
    if not documents:
        raise EmptyDocument("no text (empty, only front matter, or a scanned PDF without a text layer)")
    return documents


def _load_html(path: Path) -> list[Document]:
    """HTML in whatever encoding the page declares; block elements stay separate lines."""
    encoding = UnicodeDammit(path.read_bytes(), is_html=True).original_encoding or "utf-8"
    loader = BSHTMLLoader(str(path), open_encoding=encoding, bs_kwargs={"features": "html.parser"},
                          get_text_separator="\n")
    return loader.load()


def _load_text(path: Path) -> list[Document]:
    (raw,) = TextLoader(str(path), autodetect_encoding=True).load()
    post = frontmatter.loads(raw.page_content)
    metadata = {key: value for key, value in post.metadata.items() if _is_scalar(value)}
    metadata.setdefault("title", _first_heading(post.content) or path.stem)
    return [Document(page_content=post.content, metadata=metadata)]


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
