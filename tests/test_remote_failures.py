"""`rltab serve --engine URL` against a local server that misbehaves in each way an independent
sweep found (issue 26): answers of the wrong shape, a stream cut mid-way, `/lora-adapters` as an
object, a server that never answers, one that drips a byte at a time. Every failure is a
RemoteError (no suggestion, one warning), never a failed request, and no completion outlives its
deadline; a cancelled request shuts the socket."""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from raw_lsp import RawServer

from rltab.policy.inference.loading import load_model
from rltab.policy.inference.remote_engine import RemoteError, RemoteSpec

PROMPT = "import os\n\n\ndef main(args):\n    path = os.path."


class Misbehaving(http.server.BaseHTTPRequestHandler):
    """One way of going wrong per server, chosen by `mode`."""

    mode = "ok"
    closed = threading.Event()  # the client shut its side while we held the request
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _send(self, body: bytes, status: int = 200, kind: str = "text/event-stream") -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path.endswith("/lora-adapters"):
            self._send(b'{"adapters": 1}' if self.mode == "lora-object" else b"[]", kind="application/json")
        else:
            self._send(b'{"data": []}', kind="application/json")

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.mode in ("silent", "drip"):
            self.send_response(200) if self.mode == "drip" else None
            if self.mode == "drip":
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
            self.connection.settimeout(0.2)
            for _ in range(600):  # up to 2 minutes, unless the client goes
                try:
                    if self.mode == "drip":
                        self.wfile.write(b"d")  # never a whole line
                        self.wfile.flush()
                    elif self.connection.recv(1) == b"":
                        break
                except TimeoutError:
                    continue
                except OSError:
                    break
                time.sleep(0.2)
            Misbehaving.closed.set()
            return
        if self.mode == "cut":  # a stream that promises more than it sends, then hangs up
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b'data: {"tokens": [5], "completion_probabilities": []}\n\n')
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        events = {
            "choices-5": b'data: {"choices": 5}\n\n',
            "data-5": b"data: 5\n\n",
            "tokens-abc": b'data: {"tokens": "abc"}\n\n',
            "lora-object": b'data: {"tokens": [5], "stop": true}\n\n',
        }
        self._send(events[self.mode])


@pytest.fixture
def misbehaving():
    Misbehaving.closed.clear()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Misbehaving)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def engine_for(url: str, deadline_s: float = 5.0):
    return load_model(Path("/nonexistent"), "starter", remote=RemoteSpec(url, deadline_s=deadline_s)).engine


@pytest.mark.parametrize(
    "mode, url_tail",
    [("choices-5", "/v1"), ("data-5", ""), ("tokens-abc", ""), ("cut", ""), ("lora-object", "")],
)
def test_every_bad_answer_is_a_remote_error(misbehaving, starter, mode, url_tail):
    Misbehaving.mode = mode
    engine = engine_for(misbehaving + url_tail)
    with pytest.raises(RemoteError):
        engine.generate(starter.encode(PROMPT), max_new_tokens=4)


@pytest.mark.parametrize("mode", ["silent", "drip"])
def test_a_server_that_never_finishes_costs_one_deadline(misbehaving, starter, mode):
    Misbehaving.mode = mode
    engine = engine_for(misbehaving, deadline_s=1.0)
    t0 = time.monotonic()
    with pytest.raises(RemoteError, match=r"within 1\.0 s"):
        engine.generate(starter.encode(PROMPT), max_new_tokens=4)
    assert time.monotonic() - t0 < 10  # not the 60-100 s of a per-read timeout
    assert Misbehaving.closed.wait(10)  # and the server saw the connection go


def test_cancelling_shuts_the_socket(misbehaving, starter):
    Misbehaving.mode = "silent"
    engine = engine_for(misbehaving, deadline_s=60.0)
    cancel = threading.Event()
    threading.Timer(0.5, cancel.set).start()
    result = engine.generate(starter.encode(PROMPT), max_new_tokens=4, cancelled=cancel.is_set)
    assert result.candidates[0].token_ids == []  # nothing came: an empty answer, no error
    assert Misbehaving.closed.wait(10)  # the server's read ended: the socket was shut, not left


@pytest.mark.parametrize("mode", ["choices-5", "silent"])
def test_the_server_answers_every_request_and_warns_once(misbehaving, tmp_path, starter, mode):
    Misbehaving.mode = mode
    url = misbehaving + ("/v1" if mode == "choices-5" else "")
    server = RawServer(tmp_path / "home", extra_args=("--engine", url, "--engine-deadline", "1"))
    try:
        server.initialize()
        uri = (tmp_path / "a.py").as_uri()
        server.open(uri, PROMPT)
        for i in range(4):
            r = server.inline(i, uri, 4, len(PROMPT.split("\n")[-1]))
            assert r.get("result") is not None and not r["result"]["items"], r
        warned = [n for n in server.notifications if n.get("method") == "window/showMessage"]
        assert len(warned) == 1 and "inference server" in warned[0]["params"]["message"], warned
    finally:
        server.close()


@pytest.mark.parametrize("url", ["http://127.0.0.1:99999", "http://[::1", "http://127.0.0.1:0", "http://:8080"])
def test_a_bad_engine_url_is_refused_at_start(tmp_path, url):
    r = subprocess.run(
        [sys.executable, "-m", "rltab.server.cli", "serve", "--engine", url, "--home", str(tmp_path / "h")],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
