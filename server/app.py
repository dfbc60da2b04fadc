"""The composition root: builds the ledger, the model holder, the service and the LSP server,
and wires them together. Nothing else constructs these."""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from pathlib import Path

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer

from rltab.feedback.outcomes import DEMONSTRATION_DELAY, RETENTION_DELAYS, OutcomeTracker
from rltab.policy.inference.loading import LoadedModel, load_model
from rltab.policy.inference.remote_engine import RemoteError, RemoteSpec
from rltab.policy.inference.threads import engine_threads
from rltab.policy.model.home import make_private, rollback

from .features import commands, completion, configuration, documents, inline_completion, lifecycle
from .learning import UpdaterProcess
from .models import ModelHolder
from .protocol import ARRIVAL, RltabProtocol, serve_stdio, strict_converter
from .recording import RETRY_S as RECORD_RETRY_S
from .recording import Recording
from .service import Served, Service, UserError
from .settings import BadEnvironment, Settings, env_delays, parse_settings

log = logging.getLogger(__name__)
VERSION = "0.1.0"
RETENTION_CHECK_EVERY_S = 1.0  # how often due retention checks and demonstrations run
TYPING_FLUSH_EVERY = 10  # checks: characters written reach the ledger every ten seconds


class RltabServer(LanguageServer):
    def __init__(self, service: Service, home: Path, updater: UpdaterProcess):
        super().__init__(
            "rltab",
            VERSION,
            protocol_cls=RltabProtocol,
            converter_factory=strict_converter,
            text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
        )
        self.service = service
        self.home = home
        self.updater = updater
        self._background: set[asyncio.Task] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._init_warnings: list[str] = []
        self._watch_files = False
        self.inline_client = False  # the client said it shows textDocument/inlineCompletion
        self._last_engine_error = ""

    def start_io(self, stdin=None, stdout=None) -> None:
        serve_stdio(self, stdin, stdout)  # robust framing and JSON-RPC checks (protocol.py)

    # -- helpers the features call -----------------------------------------------------------
    def user_call(self, fn, *args):
        """Run `fn`; bad input becomes an InvalidParams error response."""
        try:
            return fn(*args)
        except (UserError, FileNotFoundError, ValueError) as e:
            raise JsonRpcInvalidParams(str(e)) from e

    async def complete(self, uri: str, position: types.Position) -> Served | None:
        svc = self.service
        if svc.closed_after(uri, ARRIVAL.get()):  # a didClose sent after this request ran first
            return None
        req = self.user_call(svc.request, uri, position.line, position.character)
        if svc.settings.debounce_ms:
            await asyncio.sleep(svc.settings.debounce_ms / 1000)
            if svc.is_stale(req):
                return None
        cancel = threading.Event()
        try:
            suggestion = await asyncio.get_running_loop().run_in_executor(svc.executor, svc.infer, req, cancel)
        except asyncio.CancelledError:
            cancel.set()  # stop decoding at the next token
            raise
        except RemoteError as e:  # --engine URL: the server is down or refused; no suggestion, told once
            self._engine_trouble(e)
            return None
        served = svc.publish(req, suggestion)
        log.info(
            "complete %s@%d %d:%d -> %s",
            uri,
            req.version,
            position.line,
            position.character,
            "stale"
            if suggestion is not None and served is None and suggestion.kind != "none"
            else repr(served.text if served else None),
        )
        return served

    def _engine_trouble(self, e: RemoteError) -> None:
        log.warning("%s", e)
        if str(e) != self._last_engine_error:
            self._last_engine_error = str(e)
            self.window_show_message(
                types.ShowMessageParams(type=types.MessageType.Warning, message=f"rltab: inference server: {e}")
            )

    def position_of(self, uri: str, served: Served) -> types.Position:
        """The LSP position of a served suggestion: the client's position clamped into the document
        (the spec: a character past the end of a line means the end of the line)."""
        doc = self.service.documents.get(uri)
        if doc is None:  # closed meanwhile: the position the suggestion was made at
            return types.Position(line=0, character=0)
        line, character = self.service.documents.position(doc, served.offset)
        return types.Position(line=line, character=character)

    def send_status(self) -> None:
        try:
            self.protocol.notify("rltab/status", self.service.status())
        except Exception:  # a status line is never worth a failed request
            log.exception("cannot send rltab/status")

    def show_message_threadsafe(self, message: str, kind=types.MessageType.Warning) -> None:
        """window/showMessage from any thread (model problems are found on the inference worker)."""

        def show():
            try:
                self.window_show_message(types.ShowMessageParams(type=kind, message=message))
            except Exception:
                log.exception("cannot show a message")

        if self._loop is not None:
            self._loop.call_soon_threadsafe(show)

    def send_status_threadsafe(self) -> None:
        """For other threads (a model swap happens on the inference worker)."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.send_status)

    def apply_settings(self, raw) -> None:
        settings, warnings = parse_settings(raw, self.service.settings)
        self.service.configure(settings)
        self.updater.ensure(settings.trains)
        for w in warnings:
            self.window_show_message(types.ShowMessageParams(type=types.MessageType.Warning, message=w))
        self.send_status()

    def rollback(self, version=None):
        if version is not None and not isinstance(version, str):
            raise UserError("rltab.rollback takes an optional version name")
        repo = self.service.models.last_repo  # the repository being served: the user's "undo"
        current = rollback(self.home, version, repo)
        self.service.models.recheck()
        return {"current": current, "repo": repo}

    def train(self):
        return self.updater.train_now(self.service.settings.learning_enabled)

    async def _warm_up(self) -> None:
        try:
            await asyncio.get_running_loop().run_in_executor(self.service.executor, self.service.warm_up)
        except Exception as e:
            log.exception("cannot load the model")
            self.window_show_message(
                types.ShowMessageParams(type=types.MessageType.Error, message=f"rltab: cannot load the model: {e}")
            )
        self.send_status()

    async def _checks_loop(self) -> None:
        learning = self.service.learning_state()
        ticks = 0
        while True:
            await asyncio.sleep(RETENTION_CHECK_EVERY_S)
            ticks += 1
            try:
                if ticks % TYPING_FLUSH_EVERY == 0:
                    self.service.flush_typing()
                changed = self.service.run_due_checks()
                # The updater is another process: a cycle starting, or ending refused, shows up here.
                now = self.service.learning_state()
                if changed or now != learning:
                    learning = now
                    self.send_status()
            except Exception:
                log.exception("retention checks failed")

    async def _watch_workspace(self) -> None:
        watchers = [types.FileSystemWatcher(glob_pattern="**/*")]
        try:
            await self.client_register_capability_async(
                types.RegistrationParams(
                    registrations=[
                        types.Registration(
                            id="rltab-watch",
                            method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
                            register_options=types.DidChangeWatchedFilesRegistrationOptions(watchers=watchers),
                        )
                    ]
                )
            )
        except Exception as e:  # the index still follows open documents
            log.warning("the client did not take file watchers (%s): the index follows open documents only", e)

    def start_background(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


def build_server(
    home: Path,
    model_path: Path | None = None,
    learn: bool | None = None,
    train_every_events: int = 64,
    train_every_minutes: float = 30.0,
    remote: RemoteSpec | None = None,
    threads: int = 0,
) -> RltabServer:
    try:  # a read-only or full home still serves, unrecorded (recording.py)
        home.mkdir(parents=True, exist_ok=True)
        make_private(home)  # also tightens a home made by an older rltab
    except OSError as e:
        log.warning("cannot prepare the home %s: %s", home, e)
    records = Recording(home / "ledger.db", env_delays("RLTAB_RECORD_RETRY_S", (RECORD_RETRY_S,))[0])
    tracker = OutcomeTracker(
        retention_delays=env_delays("RLTAB_RETENTION_DELAYS", RETENTION_DELAYS),
        demonstration_delay=env_delays("RLTAB_DEMONSTRATION_DELAY", (DEMONSTRATION_DELAY,))[0],
    )
    # The updater waits this long for demonstrations.
    records.write(lambda ledger: ledger.set_state("demonstration_window_s", tracker.demo_delay), None)
    try:
        engine_threads()  # RLTAB_THREADS is checked at start, not at the first request
    except ValueError as e:
        raise BadEnvironment(str(e)) from None
    settings = Settings(learning_enabled=bool(learn), threads=threads)
    loader = functools.partial(load_model, remote=remote) if remote else load_model
    models = ModelHolder(home, model_path, loader=loader)
    service = Service(records, models, settings, tracker)
    service.configure(settings)
    server = RltabServer(service, home, UpdaterProcess(home, train_every_events, train_every_minutes))

    def swapped(model: LoadedModel) -> None:
        service.model_swapped()
        server.send_status_threadsafe()

    models.on_swap = swapped
    models.on_problem = server.show_message_threadsafe
    records.tell = lambda message, resumed: server.show_message_threadsafe(
        message, types.MessageType.Info if resumed else types.MessageType.Warning
    )

    for feature in (lifecycle, documents, inline_completion, completion, commands, configuration):
        feature.register(server)
    return server
