"""CSV downloads (leads, knowledge gaps), written a line at a time for a streamed response, each
cell safe to open in a spreadsheet."""
from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator


def csv_lines(columns: tuple[str, ...], records: Iterable[dict]) -> Iterator[str]:
    """`records` as CSV, a header of `columns` first, then one line per record."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    yield _taken(buffer)
    for record in records:
        writer.writerow([_cell(record.get(column)) for column in columns])
        yield _taken(buffer)


def _cell(value) -> str:
    """A CSV cell a spreadsheet will not run: text starting like a formula gets a leading
    apostrophe (a phone number such as +34600111222 stays as it is)."""
    if value is None:
        return ""
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not re.fullmatch(r"\+\d{6,15}", text):
        return "'" + text
    return text


def _taken(buffer: io.StringIO) -> str:
    """What was written to `buffer` since the last call, the buffer emptied."""
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text
