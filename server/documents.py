"""Open documents, kept by the server itself so that each incremental change can be seen against
the text it applies to (the outcome tracker needs the text *before* each change).

LSP positions count UTF-16 code units by default (a client may negotiate utf-8 or utf-32);
Python strings count code points. Characters outside the Basic Multilingual Plane (most emoji)
are two UTF-16 units.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

UTF8, UTF16, UTF32 = "utf-8", "utf-16", "utf-32"
LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def clean(text: str) -> str:
    """A lone UTF-16 surrogate (valid JSON, not valid text) becomes U+FFFD: one UTF-16 unit and one
    code point either way, so positions stay put, and the tokenizer and SQLite get real text."""
    return LONE_SURROGATE.sub("\ufffd", text) if LONE_SURROGATE.search(text) else text


def _width(ch: str, encoding: str) -> int:
    if encoding == UTF16:
        return 2 if ord(ch) > 0xFFFF else 1
    if encoding == UTF8:
        return len(ch.encode("utf-8", errors="surrogatepass"))
    return 1


def col_to_index(line: str, col: int, encoding: str = UTF16) -> int:
    """Index into `line` of a column in `encoding` units (clamped, never inside a character)."""
    units = 0
    for i, ch in enumerate(line):
        if units >= col:
            return i
        units += _width(ch, encoding)
    return len(line)


def index_to_col(line: str, index: int, encoding: str = UTF16) -> int:
    return sum(_width(ch, encoding) for ch in line[:index])


def line_starts(text: str) -> list[int]:
    starts = [0]
    i = text.find("\n")
    while i >= 0:
        starts.append(i + 1)
        i = text.find("\n", i + 1)
    return starts


def offset_at(text: str, line: int, character: int, starts: list[int] | None = None, encoding: str = UTF16) -> int:
    """Offset (code points) of an LSP position; positions past the end clamp to it."""
    starts = starts or line_starts(text)
    if line >= len(starts):
        return len(text)
    if line < 0:
        return 0
    begin = starts[line]
    end = starts[line + 1] - 1 if line + 1 < len(starts) else len(text)
    return begin + col_to_index(text[begin:end], character, encoding)


def position_at(text: str, offset: int, encoding: str = UTF16) -> tuple[int, int]:
    """LSP (line, character) of an offset."""
    line = text.count("\n", 0, offset)
    begin = text.rfind("\n", 0, offset) + 1
    return line, index_to_col(text[begin:offset], offset - begin, encoding)


@dataclass
class Document:
    uri: str
    text: str
    version: int
    language: str = ""


class Documents:
    def __init__(self, encoding: str = UTF16):
        self.docs: dict[str, Document] = {}
        self.encoding = encoding

    def offset(self, doc: Document, line: int, character: int) -> int:
        return offset_at(doc.text, line, character, encoding=self.encoding)

    def position(self, doc: Document, offset: int) -> tuple[int, int]:
        return position_at(doc.text, offset, self.encoding)

    def open(self, uri: str, text: str, version: int, language: str = "") -> Document:
        self.docs[uri] = Document(uri, clean(text), version, language)
        return self.docs[uri]

    def close(self, uri: str) -> Document | None:
        return self.docs.pop(uri, None)

    def get(self, uri: str) -> Document | None:
        return self.docs.get(uri)

    def change(self, uri: str, version: int, changes) -> list[tuple[str, int, int, str]]:
        """Apply LSP content changes in order; returns (text before, start, end, new text) per
        change, offsets into the text before it. A change without a range replaces everything."""
        doc = self.docs[uri]
        applied = []
        for ch in changes:
            before = doc.text
            rng = getattr(ch, "range", None)
            if rng is None:
                s, e = 0, len(before)
            else:
                starts = line_starts(before)
                s = offset_at(before, rng.start.line, rng.start.character, starts, self.encoding)
                e = offset_at(before, rng.end.line, rng.end.character, starts, self.encoding)
                s, e = min(s, e), max(s, e)
            new = clean(ch.text)
            doc.text = before[:s] + new + before[e:]
            applied.append((before, s, e, new))
        doc.version = version
        return applied


def uri_to_path(uri: str) -> str:
    parsed = urlparse(uri)
    return unquote(parsed.path) if parsed.scheme in ("file", "") else uri


def find_repo(path: str) -> str:
    """The nearest enclosing directory with a .git, else the file's directory; symlinks resolved,
    so that `rltab forget --repo` finds the rows whichever spelling of the path it is given."""
    p = Path(path).resolve().parent
    for d in (p, *p.parents):
        if (d / ".git").exists():
            return str(d)
    return str(p)
