"""Split: cut documents into retrievable chunks with stable ids and their heading path."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from langchain_core.documents import Document
from langchain_text_splitters import MarkdownHeaderTextSplitter, RecursiveCharacterTextSplitter

CHUNK_CHARS = 800
CHUNK_OVERLAP = 100
HEADERS = [("#", "h1"), ("##", "h2"), ("###", "h3")]


@dataclass(frozen=True)
class Chunk:
    id: str
    text: str
    metadata: dict


def split_documents(documents: list[Document], source: str) -> list[Chunk]:
    """Split one file's documents into chunks. A chunk's id is its source plus a hash of its
    content (and position among identical ones), so re-splitting unchanged text gives the
    same ids and an edit changes only the ids of what changed."""
    by_heading = MarkdownHeaderTextSplitter(HEADERS, strip_headers=False)
    by_size = RecursiveCharacterTextSplitter(
        chunk_size=CHUNK_CHARS,
        chunk_overlap=CHUNK_OVERLAP,
        separators=["\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ", ""],
    )
    chunks: list[Chunk] = []
    seen: dict[str, int] = {}
    for document in documents:
        sections = by_heading.split_text(document.page_content) if _is_markdown(source) else [document]
        for section in sections:
            headings = [section.metadata[key] for _, key in HEADERS if key in section.metadata]
            title = document.metadata.get("title", "")
            for piece in _pieces(by_size, section.page_content, title):
                text = with_context(piece, [title, *headings])
                digest = hashlib.sha256(text.encode()).hexdigest()[:16]
                occurrence = seen.get(digest, 0)
                seen[digest] = occurrence + 1
                metadata = dict(document.metadata, headings=" > ".join(headings), position=len(chunks))
                chunk_id = f"{source}#{digest}" + (f"-{occurrence}" if occurrence else "")
                chunks.append(Chunk(id=chunk_id, text=text, metadata=metadata))
    return chunks


def _pieces(splitter: RecursiveCharacterTextSplitter, text: str, title: str) -> list[str]:
    """The text cut to size. A title cut off on its own (an FAQ question before an answer too long
    for one chunk) is no chunk: `with_context` heads each of the other pieces with it."""
    pieces = [piece.strip() for piece in splitter.split_text(text) if piece.strip()]
    return [piece for piece in pieces if piece != title] if len(pieces) > 1 else pieces


def with_context(text: str, context: list[str]) -> str:
    """Prefix a chunk with the title and headings it sits under (those not already in it): a
    chunk deep in a page still says what it is about, for the embedder and for the reader."""
    missing = list(dict.fromkeys(c for c in context if c and c not in text))
    return "\n".join([*missing, text]) if missing else text


def _is_markdown(source: str) -> bool:
    return source.lower().endswith((".md", ".markdown"))
