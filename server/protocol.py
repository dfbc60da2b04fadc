"""JSON-RPC 2.0 and LSP error semantics on top of pygls: every request gets exactly one response,
with the spec's code, and none carries a traceback.

pygls 2.1 decodes each message with an `object_hook`, so any nested object shaped like a request
(an executeCommand argument) was taken for one and answered; it drops requests whose envelope is
wrong (no `jsonrpc`, no `method`, a batch) without a word; it coerces `"1"`, `1.5` and `true` into
integers; and its internal errors carry the Python traceback. Here the framing (framing.py) hands
over whole decoded values, the envelope is checked first, and only then does pygls see a message:

  unparseable JSON                     -32700 Parse error (id recovered from the bytes when possible)
  not an object, bad jsonrpc/id/method/params, a batch   -32600 Invalid Request
  a request before `initialize`       -32002 Server not initialized
  a request after `shutdown`           -32600 Invalid Request
  unknown method                       -32601 Method not found
  params of the wrong shape or type    -32602 Invalid params
  anything else that fails             -32603 Internal error, one line
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import os
import re
import sys
import threading
from typing import Any

from cattrs import transform_error
from cattrs.errors import ClassValidationError
from lsprotocol import types
from lsprotocol.types import ResponseError, ResponseErrorMessage
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.protocol import LanguageServerProtocol, default_converter

from .framing import Fault, Framer, Message

log = logging.getLogger(__name__)

PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, INTERNAL_ERROR = -32700, -32600, -32601, -32602, -32603
SERVER_NOT_INITIALIZED = -32002
READ_CHUNK = 1 << 16


def strict_converter():
    """lsprotocol's converter, without coercion: a position of `"1"`, `1.5` or `true` is an
    invalid param, not line 1."""
    converter = default_converter()

    def strict(kind):
        def hook(value, _type):
            if type(value) is kind or (kind is float and type(value) is int):
                return value
            raise TypeError(f"expected {kind.__name__}, got {type(value).__name__} {value!r}"[:120])

        return hook

    for kind in (int, str, bool, float):
        converter.register_structure_hook(kind, strict(kind))
    return converter


def valid_id(value: Any) -> bool:
    return isinstance(value, (int, str)) and not isinstance(value, bool)


_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[{}\[\]:,]|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null')


def top_level_id(raw: bytes) -> int | str | None:
    """The `id` of the top-level object in `raw`, which may be cut short or unparseable, if one
    can be read (a request must get its answer even when its body is broken)."""
    depth, want = 0, 0  # want: 1 after a top-level "id" key, 2 after its colon
    for m in _TOKEN.finditer(raw[: 1 << 20]):
        tok = m.group(0)
        if want == 2:
            if m.end() == len(raw) and not tok.startswith(b'"'):
                return None  # a number at the very end of a cut body may have lost digits
            try:
                value = json.loads(tok)
            except ValueError:
                return None
            return value if valid_id(value) else None
        if tok in (b"{", b"["):
            depth += 1
        elif tok in (b"}", b"]"):
            depth -= 1
            if depth <= 0:
                return None  # the top-level value ended without an id
        elif want == 1:
            want = 2 if tok == b":" else 0
        elif depth == 1 and tok == b'"id"':
            want = 1
    return None


class _NoDecodeTracebacks(logging.Filter):
    """pygls logs the whole cattrs traceback (dozens of lines) of every message it cannot
    decode: 4.8 MB of stderr for 6,000 malformed messages. rltab logs one line of its own."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Unable to deserialize message")


logging.getLogger("pygls.protocol.json_rpc").addFilter(_NoDecodeTracebacks())


class _Answered:
    """Stands in for a message already answered with an error; pygls ignores it."""

    jsonrpc = "answered"


ARRIVAL: contextvars.ContextVar[int] = contextvars.ContextVar("rltab_arrival", default=0)
"""The number of the message being handled, in the order they arrived. A request's handler runs
in a task that copies it, so it can tell what the client sent before and after it."""


class RltabProtocol(LanguageServerProtocol):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._initialize_seen = False
        self.received = 0  # messages so far: the number of the one being handled

    # -- the checked entry point ------------------------------------------------------------
    def handle_value(self, value: Any) -> None:
        """One decoded JSON value from the client."""
        self.received += 1
        ARRIVAL.set(self.received)
        if isinstance(value, list):
            self._reject_batch(value)
            return
        if isinstance(value, dict) and "method" not in value and ("result" in value or "error" in value):
            problem, _ = envelope_problem(value)
            if problem:  # a broken response to one of our requests: never answered
                log.warning("dropped a response: %s", problem)
            else:
                self._dispatch(value)
            return
        problem, msg_id = envelope_problem(value)
        if problem:
            self._error(msg_id, INVALID_REQUEST, problem)
            return
        method = value["method"]
        if "id" not in value:  # a notification: never answered, even when it fails
            self._dispatch(value)
            return
        msg_id = value["id"]
        if self._shutdown and method != types.EXIT:
            self._error(msg_id, INVALID_REQUEST, f"the server is shutting down; {method} refused")
        elif not self._initialize_seen and method != types.INITIALIZE:
            self._error(msg_id, SERVER_NOT_INITIALIZED, f"{method} before initialize")
        elif not self._knows(method):
            self._error(msg_id, METHOD_NOT_FOUND, f"method not found: {method}"[:200])
        else:
            if method == types.INITIALIZE:
                self._initialize_seen = True
            self._dispatch(value)

    def handle_fault(self, fault: Fault) -> None:
        log.warning("framing: %s", fault.reason)
        msg_id = top_level_id(fault.raw)
        if fault.parse_error:
            self._error(msg_id, PARSE_ERROR, f"parse error: {fault.reason}")
        else:
            self._error(msg_id, INVALID_REQUEST, fault.reason)

    def _knows(self, method: str) -> bool:
        return method in self.fm.builtin_features or method in self.fm.features

    def _dispatch(self, value: dict) -> None:
        try:
            message = self.structure_message(value)
        except JsonRpcException as exc:  # a notification or response that does not deserialize
            log.warning("dropped %s: %s", value.get("method", "a response"), exc.message)
            return
        if not isinstance(message, _Answered):  # answered with InvalidParams already
            self.handle_message(message)

    def _reject_batch(self, batch: list) -> None:
        """LSP has no batches (JSON-RPC 2.0 §6 allows a server to answer each element)."""
        if not batch:
            self._error(None, INVALID_REQUEST, "an empty batch")
            return
        answers = []
        for item in batch:
            problem, msg_id = envelope_problem(item)
            if problem or ("method" in item and "id" in item):
                answers.append(
                    ResponseErrorMessage(
                        id=msg_id,
                        error=ResponseError(
                            code=INVALID_REQUEST,
                            message=problem or "batches are not supported by the Language Server Protocol",
                        ),
                    )
                )
        if answers:
            self._send_data(answers)

    def _error(self, msg_id, code: int, message: str) -> None:
        self._send_response(msg_id, error=ResponseError(code=code, message=message))

    # -- pygls hooks ------------------------------------------------------------------------
    def _execute_handler(self, msg_id, handler, callback, args=None, kwargs=None):
        """pygls 2.1 keeps the future of every handler it runs in `_request_futures`, under a
        fresh uuid for notifications and for the steps of its built-in features (didOpen,
        didChange, didClose), and removes only those of requests: every edit leaked one, with
        its params (+2 MB per 1,000 keystrokes, without end). A finished future is dropped here;
        a request's is still answered first, by pygls' own callback."""
        super()._execute_handler(msg_id, handler, callback, args, kwargs)
        future = self._request_futures.get(msg_id)
        if future is not None:

            def forget(done, futures=self._request_futures) -> None:
                if futures.get(msg_id) is done:
                    del futures[msg_id]

            future.add_done_callback(forget)

    def structure_message(self, data):
        """pygls' structuring, with one fix: a request whose params fail to deserialize gets an
        InvalidParams response (pygls 2.1 logs it and answers nothing)."""
        try:
            return super().structure_message(data)
        except JsonRpcException as exc:
            if isinstance(data, dict) and "id" in data and "method" in data:
                cause = exc.__cause__
                why = (
                    "; ".join(transform_error(cause)) if isinstance(cause, ClassValidationError) else str(cause or exc)
                )
                err = JsonRpcInvalidParams(f"invalid params for {data['method']}: {why}"[:500])
                log.warning("answered %s", err.message[:200])
                self._send_response(data["id"], error=err.to_response_error())
                return _Answered()
            raise

    def _send_response(self, msg_id, result=None, error: ResponseError | None = None):
        """Every error leaves as one line without a traceback (pygls puts one in `data`)."""
        if error is not None:
            message = " ".join(str(error.message).split())[:500] or "error"
            data = error.data if not (isinstance(error.data, dict) and "traceback" in error.data) else None
            error = ResponseError(code=error.code, message=message, data=data)
        super()._send_response(msg_id, result, error)


def envelope_problem(msg: Any) -> tuple[str | None, int | str | None]:
    """What is wrong with a JSON-RPC 2.0 message's envelope (None: nothing), and the id to answer."""
    if not isinstance(msg, dict):
        return f"a message must be a JSON object, not {type(msg).__name__}", None
    msg_id = msg.get("id")
    answer_to = msg_id if valid_id(msg_id) else None
    if msg.get("jsonrpc") != "2.0":
        return 'missing or wrong "jsonrpc" (must be "2.0")', answer_to
    if "id" in msg and not valid_id(msg_id):
        return f'"id" must be an integer or a string, not {type(msg_id).__name__}', None
    if "method" not in msg:
        if "id" in msg and ("result" in msg) != ("error" in msg):
            return None, msg_id  # a response
        return 'a request needs a "method"', answer_to
    if not isinstance(msg["method"], str):
        return '"method" must be a string', answer_to
    if msg.get("params") is not None and not isinstance(msg["params"], (dict, list)):  # null: as absent
        return '"params" must be an object or an array', answer_to
    return None, answer_to


def serve_stdio(server, stdin=None, stdout=None) -> None:
    """The server's main loop over stdio, in place of pygls' reader (framing.py says why)."""
    from pygls.io_ import StdoutWriter

    stdin = stdin or sys.stdin.buffer
    server._stop_event = threading.Event()
    server.protocol.set_writer(StdoutWriter(stdout or sys.stdout.buffer))
    try:
        asyncio.run(_read_loop(server, stdin))
    except BrokenPipeError:
        log.error("the client closed the connection")
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.shutdown()


async def _read_loop(server, stdin) -> None:
    loop = asyncio.get_running_loop()
    server._loop = loop  # messages from other threads (a model that fails to load) need it from the start
    chunks: asyncio.Queue[bytes] = asyncio.Queue()
    fd = stdin.fileno()

    def reader() -> None:  # a thread: os.read returns what has arrived, never waits for more
        while True:
            try:
                data = os.read(fd, READ_CHUNK)
            except OSError:
                data = b""
            loop.call_soon_threadsafe(chunks.put_nowait, data)
            if not data:
                return

    threading.Thread(target=reader, name="rltab-stdin", daemon=True).start()
    framer = Framer()
    protocol: RltabProtocol = server.protocol
    while not server._stop_event.is_set():
        data = await chunks.get()  # however long it takes: only bytes end a message (framing.py)
        if data == b"":
            return  # the client closed stdin
        try:
            items = framer.feed(data)
        except Exception:  # a framing bug must cost one message, never the connection
            log.exception("cannot frame the input; dropping %d buffered bytes", len(framer.buf))
            framer.buf.clear()
            items = []
        for item in items:
            try:
                if isinstance(item, Message):
                    protocol.handle_value(item.value)
                else:
                    protocol.handle_fault(item)
            except (SystemExit, KeyboardInterrupt, BrokenPipeError):
                raise
            except Exception:  # a message must never take the server down
                log.exception("cannot handle a message")
