"""LSP base protocol framing, made robust: bytes in, decoded JSON messages (or faults) out.

A message is `Content-Length: N\r\n` (other headers allowed, names in any case) + `\r\n` + N bytes
of UTF-8 JSON. pygls' reader trusts every frame: after one wrong length it stays alive but never
answers again, and a huge length kills it. This reader recovers from every framing fault:
- a length too short or too long: the JSON value that starts the body is decoded on its own, and
  reading goes on at the next header (a length too long is found out when the next message comes);
- a missing, malformed or oversized length: the body is skipped up to the next header;
- bytes between messages: skipped up to the next header.
Every fault that could hide a request comes back as a `Fault` carrying the bytes read, so the
protocol can answer the request's id (JSON-RPC -32700 / -32600). Pure: no I/O, no clock. Only
bytes decide where a message ends: a slow link (eglot over TRAMP, a remote container) may pause
for seconds inside a message, and a pause is never taken for its end.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

MAX_MESSAGE_BYTES = 64 * 2**20  # a 64 MiB JSON message is no editor's; it is a broken or hostile client
MAX_HEADER_BYTES = 8192
HEADER_START = re.compile(rb"content-length", re.I)
HEADER_END = re.compile(rb"\r?\n\r?\n")
LENGTH = re.compile(rb"content-length[ \t]*:[ \t]*([^\r\n]*)", re.I)
_DECODER = json.JSONDecoder()


@dataclass
class Message:
    value: object  # the decoded JSON value (an object, or anything else a client sent)


@dataclass
class Fault:
    reason: str
    raw: bytes = b""  # what was read of the message, for finding its id
    parse_error: bool = True  # JSON-RPC -32700 (else -32600: a frame too large to read)


class Framer:
    def __init__(self, max_bytes: int = MAX_MESSAGE_BYTES):
        self.max_bytes = max_bytes
        self.buf = bytearray()
        self._skipping = False  # inside an oversized body: drop bytes quietly until the next header

    def feed(self, data: bytes) -> list[Message | Fault]:
        self.buf += data
        out: list[Message | Fault] = []
        while self._step(out):
            pass
        return out

    # -- internals ---------------------------------------------------------------------------
    def _frame(self) -> tuple[int, int | None] | None:
        """(body start, declared length, None when missing or malformed) of the first frame in the
        buffer, after dropping the bytes before its header; None until a whole header is there."""
        while True:
            m = HEADER_START.search(self.buf)
            if m is None:
                keep = len("content-length") - 1  # a header may be arriving in pieces
                if len(self.buf) > keep:
                    del self.buf[: len(self.buf) - keep]
                return None
            if m.start():
                del self.buf[: m.start()]  # stray bytes (the tail of a body cut short): dropped
            end = HEADER_END.search(self.buf, 0, MAX_HEADER_BYTES)
            if end is not None:
                break
            if len(self.buf) < MAX_HEADER_BYTES:
                return None
            del self.buf[:1]  # no header ends within the limit: not a header, look further on
        m = LENGTH.match(self.buf)
        raw = m.group(1).strip() if m else b""
        return end.end(), int(raw) if raw.isdigit() and len(raw) < 20 else None

    def _head(self, start: int) -> bytes:
        """The first bytes of the body at `start`, up to the next header (for finding its id)."""
        head = bytes(self.buf[start : start + 4096])
        nxt = HEADER_START.search(head)
        return head[: nxt.start()] if nxt else head

    def _step(self, out: list) -> bool:
        """Take one message (or fault) off the buffer; False when more bytes are needed."""
        frame = self._frame()
        if frame is None:
            return False
        start, length = frame
        if length is not None and length > self.max_bytes:
            out.append(
                Fault(
                    f"message of {length} bytes is over the {self.max_bytes}-byte limit",
                    self._head(start),
                    parse_error=False,
                )
            )
            del self.buf[:start]  # the body is then dropped as stray bytes, up to the next header
            return True
        if length is not None:
            if len(self.buf) - start < length:
                # The body is still arriving, unless the next message has begun after a whole
                # JSON value: then the length promised too much.
                return self._take_before_next(start, out)
            body = bytes(self.buf[start : start + length])
            try:
                out.append(Message(json.loads(body)))
                del self.buf[: start + length]
                return True
            except RecursionError:
                out.append(Fault("JSON nested too deeply", body[:4096]))
                del self.buf[: start + length]
                return True
            except ValueError:
                pass  # a wrong length, or not JSON: see below
        # The declared length was wrong or missing: take the JSON value the body starts with when
        # nothing, or the next header, follows it.
        value = _first_value(self.buf[start:])
        if value is not None:
            nxt = start + value[1]
            rest = bytes(self.buf[nxt:]).lstrip()
            if not rest or HEADER_START.match(rest):
                out.append(Message(value[0]))
                del self.buf[:nxt]
                return True
        nxt_header = HEADER_START.search(self.buf, start)
        if nxt_header is None and length is None:
            return False  # no length to go by: wait for more bytes (a whole value or the next header)
        # A declared length whose bytes have all come ends the message, parseable or not.
        out.append(Fault("unparseable message", self._head(start)))
        cut = nxt_header.start() if nxt_header else start + (length if length is not None else len(self.buf))
        del self.buf[:cut]
        return True

    def _take_before_next(self, start: int, out: list) -> bool:
        """A whole JSON value at `start` followed by the next message's header: that value."""
        if HEADER_START.search(self.buf, start) is None:
            return False
        value = _first_value(self.buf[start:])
        if value is None or not HEADER_START.match(bytes(self.buf[start + value[1] :]).lstrip()):
            return False
        out.append(Message(value[0]))
        del self.buf[: start + value[1]]
        return True


def _incomplete(data: bytes | bytearray) -> bool:
    """Whether `data` could still become a JSON value with more bytes (it stops mid-value)."""
    try:
        _DECODER.raw_decode(bytes(data).decode("utf-8", "surrogateescape").lstrip())
    except json.JSONDecodeError as e:
        return e.pos >= len(e.doc) or e.msg.startswith("Unterminated string")
    except (ValueError, RecursionError):
        return False
    return False


def _first_value(data: bytes | bytearray) -> tuple[object, int] | None:
    """The JSON value at the start of `data` and the number of bytes it takes, else None."""
    text = bytes(data).decode("utf-8", "surrogateescape")
    body = text.lstrip()
    try:
        value, end = _DECODER.raw_decode(body)
    except (ValueError, RecursionError):
        return None
    return value, len((text[: len(text) - len(body)] + body[:end]).encode("utf-8", "surrogateescape"))
