"""Load: turn files and folders into LangChain documents with their source metadata."""
from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import frontmatter
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

    def content_hash(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


@dataclass
class LoadFailure:
    source: str
    reason: str


@dataclass
class LoadedFile:
    file: SourceFile
    documents: list[Document] = field(default_factory=list)


def find_files(paths: list[Path], exclude: tuple[str, ...] = ()) -> list[SourceFile]:
    """Expand files and folders (recursively) into supported files, sorted, each named relative
    to the folder it was found under (a file given directly is named by its file name)."""
    found: dict[str, SourceFile] = {}
    for root in paths:
        if root.is_dir():
            candidates = [(p, p.relative_to(root).as_posix()) for p in sorted(root.rglob("*"))]
        else:
            candidates = [(root, root.name)]
        for path, source in candidates:
            if path.is_file() and path.suffix.lower() in SUPPORTED_SUFFIXES:
                if not any(Path(source).match(pattern) for pattern in exclude):
                    found.setdefault(source, SourceFile(path=path, source=source))
    return list(found.values())


def load_file(file: SourceFile) -> LoadedFile:
    """Read one file into documents (one per PDF page); raises on unreadable input."""
    suffix = file.path.suffix.lower()
    if suffix in TEXT_SUFFIXES:
        documents = _load_text(file.path)
    elif suffix == ".pdf":
        documents = PyPDFLoader(str(file.path)).load()
    elif suffix == ".docx":
        documents = Docx2txtLoader(str(file.path)).load()
    else:
        documents = BSHTMLLoader(str(file.path), bs_kwargs={"features": "html.parser"}).load()
    for document in documents:
        document.metadata = _clean_metadata(document.metadata, file)
    return LoadedFile(file=file, documents=[d for d in documents if d.page_content.strip()])


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
    cleaned["title"] = str(cleaned.get("title") or file.path.stem)
    if "page" in cleaned:
        cleaned["page"] = int(cleaned["page"]) + 1  # PyPDFLoader counts pages from 0
    return cleaned


def _is_scalar(value) -> bool:
    return isinstance(value, (str, int, float, bool))


def _first_heading(markdown: str) -> str | None:
    for line in markdown.splitlines():
        if line.startswith("#"):
            return line.lstrip("#").strip() or None
    return None
