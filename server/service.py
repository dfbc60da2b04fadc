"""The server's core, free of LSP types: documents, completions, outcomes, ledger and status.

The LSP feature modules (server/features/) only translate messages into calls on this class.
Inference runs on one worker thread; everything else runs on the event loop's thread.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter, OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from rltab.feedback import rewards as R
from rltab.feedback.ledger import SuggestionRecord
from rltab.feedback.outcomes import Demonstration, OutcomeTracker, Resolution, RetentionCheck
from rltab.feedback.secrets import contains_secret, is_secret_file
from rltab.policy.completion.completer import Completer, Suggestion
from rltab.policy.completion.context import LINE, NONE
from rltab.policy.completion.prompt import RepoPrompt, Window
from rltab.policy.inference.loading import LoadedModel
from rltab.policy.model.formats import STARTER_VERSION
from rltab.policy.model.home import training_now
from rltab.policy.workspace.index import WorkspaceIndex
from rltab.policy.workspace.repeats import RequestRepeats, WorkspaceRepeats
from rltab.policy.workspace.repo_context import RepoContext, Where

from .documents import Documents, find_repo, uri_to_path
from .models import ModelHolder
from .recording import Recording
from .settings import Settings

log = logging.getLogger(__name__)

UNRECORDED_KEPT = 1000  # ids of suggestions served unrecorded, remembered for their commands
CLOSED_KEPT = 256  # documents whose closing is remembered (Service.closed_after)
# An edit this long or shorter is writing (typing, accepting a suggestion); a longer one is a
# paste, a formatter or a generated file, which no completion could have saved.
TYPED_EDIT_MAX = 200


class UserError(ValueError):
    """Bad input from the client: answered with an LSP error, nothing else happens."""


@dataclass
class Request:
    """A snapshot of the document when the completion was asked for."""

    uri: str
    version: int
    text: str
    offset: int
    seq: int
    language: str = ""  # the client's languageId ("python" for .py files when it sends none)


@dataclass
class Served:
    suggestion_id: str
    text: str
    offset: int
    kind: str
    model_version: str
    latency_ms: float


class Service:
    def __init__(
        self,
        records: Recording,
        models: ModelHolder,
        settings: Settings = Settings(),
        tracker: OutcomeTracker | None = None,
    ):
        self.records = records  # the ledger, as the serving path uses it (recording.py)
        self._unrecorded: OrderedDict[str, None] = OrderedDict()  # served while nothing was recorded
        self._closed: OrderedDict[str, int] = OrderedDict()  # uri -> the message that closed it
        self.models = models
        self.settings = settings
        self.tracker = tracker or OutcomeTracker()
        self.documents = Documents()
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rltab-infer")
        self._completers: dict[int, Completer] = {}
        self._seq: dict[str, int] = {}
        self._typed: Counter[tuple[str, str]] = Counter()  # chars written per (version, repo), not yet in the ledger
        self._repos: dict[str, str] = {}
        self.index = WorkspaceIndex()
        self.context = RepoContext(self.index)
        self._repeats: dict[int, WorkspaceRepeats] = {}  # by tokenizer: the workspace as tokens
        # Benchmarks only: completions wait for the workspace index and token table (deterministic replays).
        self.settled_workspace = os.environ.get("RLTAB_SETTLED_WORKSPACE") == "1"

    def configure(self, settings: Settings) -> None:
        """New settings; the reward scheme applies to outcomes settled from now on."""
        self.settings = settings
        self.records.rewards = R.RewardConfig(scheme=settings.reward_scheme, read_cost_chars=settings.read_cost_chars)
        self.models.set_threads(settings.threads)  # 0: each model's own choice (inference/threads.py)

    # -- workspace and documents -------------------------------------------------------------
    def open_workspace(self, folders: list[str]) -> None:
        """Index the workspace folders (URIs or paths) in the background."""
        self.index.start([Path(uri_to_path(f)) for f in folders])

    def files_changed(self, uris: list[str]) -> None:
        """workspace/didChangeWatchedFiles: re-read (or drop) those files, off the request path."""
        for uri in uris:
            self.index.file_changed(uri_to_path(uri))

    def open(self, uri: str, text: str, version: int, language: str = "") -> None:
        self.documents.open(uri, text, version, language)
        self.tracker.opened(uri)
        self.index.document(uri_to_path(uri), text)

    def change(self, uri: str, version: int, changes) -> int:
        """Apply edits; returns how many suggestions they settled."""
        if self.documents.get(uri) is None:
            raise UserError(f"document not open: {uri}")
        settled = 0
        path = uri_to_path(uri)
        for before, s, e, new in self.documents.change(uri, version, changes):
            settled += self._settle(self.tracker.changed(uri, before, s, e, new))
            self.context.edited(path, before.count("\n", 0, s))
            if 0 < len(new) <= TYPED_EDIT_MAX:
                repo = self.repo_of(uri)
                self._typed[(self.models.serving(repo) or STARTER_VERSION, repo)] += len(new)
        doc = self.documents.get(uri)
        if doc is not None:
            self.index.document(path, doc.text)
        return settled

    def close(self, uri: str, at: int = 0) -> None:
        """`at`: the number of the message that closed it (protocol.ARRIVAL)."""
        doc = self.documents.close(uri)
        if doc is not None:
            self._closed[uri] = at
            while len(self._closed) > CLOSED_KEPT:
                self._closed.popitem(last=False)
        if doc is not None:
            self._settle(self.tracker.closed(uri, doc.text))
            path = uri_to_path(uri)
            self.index.document(path, None)
            self.context.forget(path)
            for repeats in self._repeats.values():
                repeats.forget(path)

    # -- completion --------------------------------------------------------------------------
    def closed_after(self, uri: str, sent: int) -> bool:
        """Whether the document was closed by a message that came after message `sent` (a request
        the client sent while it was open: answered empty, not as an error)."""
        return self.documents.get(uri) is None and self._closed.get(uri, -1) > sent

    def request(self, uri: str, line: int, character: int) -> Request:
        doc = self.documents.get(uri)
        if doc is None:
            raise UserError(f"document not open: {uri}")
        if line < 0 or character < 0:
            raise UserError(f"invalid position {line}:{character}")
        seq = self._seq.get(uri, 0) + 1
        self._seq[uri] = seq
        language = doc.language or ("python" if uri.endswith((".py", ".pyi")) else "")
        return Request(uri, doc.version, doc.text, self.documents.offset(doc, line, character), seq, language)

    def is_stale(self, req: Request) -> bool:
        """The document changed, or a newer request for it arrived, since `req` was made."""
        doc = self.documents.get(req.uri)
        return doc is None or doc.version != req.version or self._seq.get(req.uri) != req.seq

    def infer(self, req: Request, cancel: threading.Event) -> Suggestion | None:
        """Run the model (worker thread). None when the request went stale before it ran."""
        if cancel.is_set() or self.is_stale(req):
            return None
        model = self.models.get(self.repo_of(req.uri))
        completer = self._completer(model)
        return completer.complete(
            req.text[: req.offset],
            req.text[req.offset :],
            max_lines=self.settings.max_lines,
            silence_threshold=self.settings.silence_threshold,
            cache_key=req.uri,
            cancelled=cancel.is_set,
            syntax_check=self.settings.syntax_check,
            language=req.language,
            context=self._context_source(req, model) if self.settings.context else None,
        )

    def _context_source(self, req: Request, model: LoadedModel) -> RequestContext:
        path = uri_to_path(req.uri)
        return RequestContext(
            self,
            path,
            req.text,
            req.text.count("\n", 0, req.offset),
            req.language,
            Path(self.repo_of(req.uri)).name,
            self._workspace_repeats(model),
        )

    def _workspace_repeats(self, model: LoadedModel) -> WorkspaceRepeats:
        key = id(model.tokenizer)
        r = self._repeats.get(key)
        if r is None:  # one table per tokenizer in use (adapter versions share their base's)
            self._repeats = {
                k: v for k, v in self._repeats.items() if k in {id(m.tokenizer) for m in self.models.live()}
            }
            r = self._repeats[key] = WorkspaceRepeats(self.index, model.encode, model.tokenizer.get_vocab_size())
        if self.settled_workspace and not r.settled():
            self.index.wait_ready()
            r.rebuild_now()
        return r

    def _completer(self, model: LoadedModel) -> Completer:
        c = self._completers.get(id(model))
        if c is None:  # keep the completers (and their KV caches) of live models only
            live = {id(m) for m in self.models.live()} | {id(model)}
            self._completers = {k: v for k, v in self._completers.items() if k in live}
            c = self._completers[id(model)] = Completer(model)
        return c

    def repo_of(self, uri: str) -> str:
        """The repository a document belongs to: its rows, and its chain of versions."""
        path = uri_to_path(uri)
        return self._repos.get(path) or self._repos.setdefault(path, find_repo(path))

    def publish(self, req: Request, s: Suggestion | None) -> Served | None:
        """Record what will be shown (event-loop thread). Stale answers, and contexts where the
        model was not asked at all, are dropped unrecorded."""
        if s is None or s.kind == NONE or self.is_stale(req):
            return None
        sid = self._record(req, s)
        # What the user writes here becomes a demonstration: the rest of the line, or as many
        # lines as the block suggestion had.
        lines = 1 if s.kind == LINE else 0
        self._settle(self.tracker.shown(sid, req.uri, req.offset, s.text, demo_lines=lines))
        return Served(sid, s.text, req.offset, s.kind, s.model_version, s.latency_ms)

    def _record(self, req: Request, s: Suggestion) -> str:
        path = uri_to_path(req.uri)
        repo = self.repo_of(req.uri)
        doc = self.documents.get(req.uri)
        # (Repository snippets never hold a secret: workspace/repo_context.py leaves such ones out.)
        # The suggestion is checked inside its lines: a secret split across the cursor is still one.
        keep = self.settings.learning_enabled and self._storable(path, s.window_before + s.text + s.window_after)
        record = SuggestionRecord(
            model_version=s.model_version,
            kind=s.kind,
            completion_chars=len(s.text),
            latency_ms=s.latency_ms,
            confidence=round(s.confidence, 5),
            repo=repo,
            file=path,
            language=doc.language if doc else "",
            prompt_ids=s.prompt_ids if keep else None,
            completion_ids=s.token_ids if keep else None,
            logprobs=s.logprobs if keep else None,
            prefix_text=s.window_before if keep else None,
            suffix_text=s.window_after if keep else None,
            completion_text=s.text if keep else None,
            prompt_tokens=s.prompt_tokens,
            prefill_tokens=s.prefill_tokens,
            healed=s.healed,
            syntax_error=s.syntax_error,
            tokenizer=s.tokenizer or None,
        )
        if self.records.write(lambda ledger: ledger.record_suggestion(record), None) is None:
            self._unrecorded[record.id] = None  # its accept command must not fail
            while len(self._unrecorded) > UNRECORDED_KEPT:
                self._unrecorded.popitem(last=False)
        return record.id

    @staticmethod
    def _storable(path: str, *texts: str) -> bool:
        """Text may be kept for learning: not from a secret-named file, no secret anywhere in it."""
        return not is_secret_file(path) and not any(contains_secret(t, path) for t in texts)

    # -- outcomes ----------------------------------------------------------------------------
    def _settle(self, resolutions: list[Resolution]) -> int:
        for r in resolutions:
            self._settle_one(r)
        return len(resolutions)

    def _settle_one(self, r: Resolution) -> None:
        self.records.write(lambda ledger: ledger.record_outcome(r.suggestion_id, r.outcome, r.accepted_chars), None)

    def explicit(self, kind: str, args: list) -> dict:
        """rltab.accepted [id] / rltab.partiallyAccepted [id, acceptedLength] / rltab.rejected [id]."""
        if not args or not isinstance(args[0], str):
            raise UserError(f"rltab.{kind} needs a suggestion id as its first argument")
        sid, chars = args[0], 0
        if kind == R.PARTIAL:
            if len(args) < 2 or not isinstance(args[1], int) or isinstance(args[1], bool) or args[1] < 0:
                raise UserError("rltab.partiallyAccepted needs [id, acceptedLength >= 0]")
            chars = args[1]
        if kind == R.REJECTED:
            self.tracker.rejected(sid)
        known = self.records.write(lambda ledger: ledger.record_outcome(sid, kind, chars, source="explicit"), None)
        if known is None or (not known and sid in self._unrecorded):  # served or settled unrecorded
            return {"id": sid, "outcome": None, "reward": None, "recorded": False}
        if not known:
            raise UserError(f"unknown suggestion id {sid!r}")
        row = self.records.read(lambda ledger: ledger.suggestion(sid), None)
        return {"id": sid, "outcome": row and row["outcome"], "reward": row and row["reward"]}

    def run_due_checks(self) -> int:
        """Retention checks and demonstrations whose time has come. Returns how many ran."""

        def text_of(uri):
            doc = self.documents.get(uri)
            return doc.text if doc else None

        done = 0
        for item in self.tracker.due(text_of):
            self._run_check(item)
            done += 1
        return done

    def _run_check(self, item: RetentionCheck | Demonstration) -> None:
        row = self.records.read(lambda ledger: ledger.suggestion(item.suggestion_id), None)
        # Only beside a prompt that was itself kept (text next to a secret stays unrecorded), and
        # checked with the line it completes: a token typed after its first half is still a token.
        keep = (
            row is not None
            and row["prompt_ids"] is not None
            and self.settings.learning_enabled
            and self._storable(row["file"] or "", (row["prefix_text"] or "") + item.text)
        )
        if isinstance(item, RetentionCheck):
            text = item.text if keep else None
            self.records.write(lambda ledger: ledger.record_retention(item.suggestion_id, item.retention, text), None)
        elif keep and item.text.strip():
            self.records.write(lambda ledger: ledger.record_demonstration(item.suggestion_id, item.text), None)

    def warm_up(self) -> str:
        """Load the model (and build its ONNX file if needed) before the first request."""
        return self.models.get().version

    # -- status ------------------------------------------------------------------------------
    def status(self) -> dict:
        """The `rltab/status` figures, from the ledger's running counts (no scan per edit)."""
        version = self.models.version
        rate, pending = self.records.read(lambda ledger: ledger.status_counts(version), (0.0, 0))
        live = self.models.last
        return {
            "modelVersion": version,
            "learning": self.settings.learning_enabled,
            "acceptRate": rate,
            "pendingEvents": pending,
            # Beyond the contract's four: what editors show as states and notifications.
            "languages": list(live.languages) if live and live.languages is not None else None,
            "learningPaused": self.settings.learning_paused,
            "threads": getattr(live.engine, "threads", None) if live else None,  # None: a remote engine
            **self.learning_state(),
        }

    def learning_state(self) -> dict:
        """Whether an update cycle runs now, and the last one's outcome (published or refused, why):
        cheap enough to poll (a file and one indexed row)."""
        # last_cycle's columns are the notification's fields: {id, time, repo, parent, version, reason}
        last = self.records.read(lambda ledger: ledger.last_cycle(), None)
        return {"training": training_now(self.models.home), "lastUpdate": last}

    def model_swapped(self) -> None:
        """A new version is live: the updater (another process) has marked rows as used."""
        self.records.read(lambda ledger: ledger.recount(), None)

    def flush_typing(self) -> None:
        """Characters written since the last flush into the ledger (counts only, never text)."""
        if self._typed:
            counts, self._typed = dict(self._typed), Counter()
            self.records.write(lambda ledger: ledger.add_typing(counts), None)

    def shutdown(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.index.stop()
        self.flush_typing()
        self.records.close()


@dataclass(frozen=True)
class RequestContext:
    """The repository around one request (completer.ContextSource): the snippets in front of the
    prompt, and the rest of the workspace for the copy distribution."""

    service: Service
    path: str
    text: str
    cursor_line: int
    language: str
    repo_name: str
    workspace: WorkspaceRepeats

    def prompt(self, win: Window, encode) -> RepoPrompt:
        where = Where.around(self.path, self.text, self.cursor_line, win, self.language)
        ctx = self.service.context
        return RepoPrompt(tuple(ctx.snippets(where, encode)), ctx.display(self.path), self.repo_name)

    def repeats(self, win: Window) -> RequestRepeats:
        head = self.workspace.head(self.path, self.text.split("\n"), win.first_line)
        return RequestRepeats(self.workspace.table(), self.path, head)
