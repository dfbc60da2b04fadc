"""The workspace index: every readable file of the workspace folders (and every open document),
cut into overlapping windows of lines, with an inverted index from identifiers to windows.

Built on a background thread at `initialize` and kept current from didOpen/didChange/didClose and
didChangeWatchedFiles by the same thread: a request only reads it (under a short lock) and never
waits for indexing. Memory is bounded by `Limits`.
"""

from __future__ import annotations

import heapq
import keyword
import logging
import queue
import re
import sys
import threading
import time
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rltab.feedback.secrets import is_secret_file

from .files import IgnoreRules, Limits, inside, readable_text, walk

log = logging.getLogger(__name__)

UPDATE_DELAY_S = 0.3
"""Edits are applied in batches this long: an open document is re-read once per pause, not once
per keystroke."""
WINDOW_LINES = 10
"""Lines per window (small: the model's whole prompt is ~512 tokens)..."""
WINDOW_STEP = 5
"""...and a new window every this many lines."""
RARE_POSTINGS = 400
"""An identifier in more windows than this does not nominate candidates (after the two rarest)..."""
MAX_CANDIDATES = 2000
"""...and nominating stops at this many candidates (a bounded cost per request on any repository)."""
IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
STOPWORDS = frozenset(keyword.kwlist) | {"self", "cls", "None", "True", "False", "str", "int", "return"}


def identifiers(text: str) -> set[str]:
    return {t for t in IDENT.findall(text) if len(t) > 1 and t not in STOPWORDS}


@dataclass(slots=True)
class Window:
    path: str
    start: int  # first line (0-based)
    end: int  # one past the last line
    tokens: tuple[str, ...]  # its identifiers, each once (a tuple: a quarter of a set's memory)

    def overlap(self, query: set[str]) -> int:
        return sum(1 for t in self.tokens if t in query)

    def jaccard(self, query: set[str]) -> float:
        n = self.overlap(query)
        return n / (len(query) + len(self.tokens) - n)


@dataclass
class FileEntry:
    path: str
    text: str
    windows: list[Window] = field(default_factory=list)
    is_open: bool = False  # an open document: its text comes from the editor, not the disk


def cut_windows(path: str, text: str) -> list[Window]:
    lines = text.split("\n")
    out = []
    for start in range(0, max(1, len(lines) - WINDOW_LINES + WINDOW_STEP), WINDOW_STEP):
        end = min(len(lines), start + WINDOW_LINES)
        tokens = identifiers("\n".join(lines[start:end]))
        if len(tokens) >= 3:
            out.append(Window(path, start, end, tuple(sys.intern(t) for t in sorted(tokens))))
    return out


@dataclass
class Match:
    window: Window
    score: float


class WorkspaceIndex:
    def __init__(self, limits: Limits = Limits()):
        self.limits = limits
        self.roots: list[Path] = []
        self._rules: dict[Path, IgnoreRules] = {}
        self._files: dict[str, FileEntry] = {}
        # Window ids index `_windows`; a removed window leaves None (skipped by queries) until
        # enough are dead to renumber: postings are append-only arrays, not sets (memory).
        self._postings: dict[str, array] = {}
        self._windows: list[Window | None] = []
        self._ids: dict[str, range] = {}  # path -> its window ids
        self._dead = 0
        self._bytes = 0
        self._lock = threading.Lock()
        self._queue: queue.Queue = queue.Queue()
        self._pending: dict[str, tuple[str | None, bool]] = {}  # coalesced updates by path
        self._thread: threading.Thread | None = None
        self.ready = threading.Event()
        self.build_seconds = 0.0
        self.paths_generation = 0  # bumped when a file comes or goes: callers cache what derives from paths
        self.generation = 0  # bumped on any change to a file's text, too

    @classmethod
    def of_texts(cls, root: Path, texts: dict[str, str], limits: Limits = Limits()) -> WorkspaceIndex:
        """An index of given files, built at once (training examples, tests)."""
        index = cls(limits)
        index.roots = [root]
        for path, text in texts.items():
            index._put(FileEntry(path, text, cut_windows(path, text)))
        index.ready.set()
        return index

    # -- writes (queued; applied by the indexing thread) -------------------------------------
    def start(self, roots: list[Path]) -> None:
        """Index `roots` in the background; updates queued meanwhile are applied after."""
        self.roots = [r.resolve() for r in roots if r.is_dir()]
        self._rules = {r: IgnoreRules(r) for r in self.roots}
        self._thread = threading.Thread(target=self._run, name="rltab-index", daemon=True)
        self._thread.start()

    def document(self, path: str, text: str | None) -> None:
        """An open document's text (None: closed, the disk's copy counts again). Secret-named
        files are never indexed, open or not."""
        if is_secret_file(path):
            return
        self._enqueue(path, text, True)

    def file_changed(self, path: str) -> None:
        """A watched file was created, changed or deleted on disk."""
        self._enqueue(path, None, False)

    def _enqueue(self, path: str, text: str | None, is_doc: bool) -> None:
        with self._lock:
            fresh = path not in self._pending
            self._pending[path] = (text, is_doc)
        if self._thread is None:  # never started (an index of given texts): apply inline
            self._apply_pending()
        elif fresh:
            self._queue.put(path)

    def _run(self) -> None:
        t0 = time.perf_counter()
        try:
            self._build()
        except Exception:
            log.exception("workspace indexing failed")
        self.build_seconds = time.perf_counter() - t0
        self.ready.set()
        log.info("indexed %d files (%d KB) in %.2f s", len(self._files), self._bytes // 1000, self.build_seconds)
        while True:
            path = self._queue.get()
            if path is None:
                return
            time.sleep(UPDATE_DELAY_S)
            try:
                self._apply_pending()
            except Exception:
                log.exception("cannot index %s", path)
            finally:
                self._queue.task_done()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)

    def wait_ready(self, timeout: float | None = None) -> bool:
        return self.ready.wait(timeout)

    def drain(self, timeout: float = 5.0) -> None:
        """Wait until queued updates are applied (tests and benchmarks only)."""
        deadline = time.time() + timeout
        self.ready.wait(timeout)
        while self._queue.unfinished_tasks and time.time() < deadline:
            time.sleep(0.01)

    def _build(self) -> None:
        for root in self.roots:
            for p in walk(root, self._rules[root]):
                if len(self._files) >= self.limits.max_files or self._bytes >= self.limits.max_total_bytes:
                    log.warning("workspace index full (%d files): the rest is not indexed", len(self._files))
                    return
                key = str(p)
                with self._lock:
                    opened = key in self._files or self._pending.get(key, (None, False))[1]
                if opened:
                    continue  # an open document: the editor's text, not the disk's, is indexed
                text = readable_text(p, self.limits)
                if text is not None:
                    self._put(FileEntry(key, text, cut_windows(key, text)))

    def _apply_pending(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        for path, (text, is_doc) in pending.items():
            if is_doc and text is not None:
                self._put(FileEntry(path, text, cut_windows(path, text), is_open=True))
                continue
            current = self._files.get(path)
            if current is not None and current.is_open and not is_doc:
                continue  # the editor's copy wins over the disk's while the document is open
            disk = self._readable_on_disk(path)
            if disk is None:
                self._remove(path)
            else:
                self._put(FileEntry(path, disk, cut_windows(path, disk)))

    def _readable_on_disk(self, path: str) -> str | None:
        p = Path(path)
        root = inside(p, self.roots)
        if root is None or self._rules[root].ignored_with_parents(p.resolve()):
            return None
        return readable_text(p, self.limits)

    def _put(self, entry: FileEntry) -> None:
        with self._lock:
            self.generation += 1
            existed = self._remove_locked(entry.path)
            if not entry.is_open and (
                len(self._files) >= self.limits.max_files or self._bytes + len(entry.text) > self.limits.max_total_bytes
            ):
                self.paths_generation += existed
                return
            self._files[entry.path] = entry
            self._bytes += len(entry.text)
            first = len(self._windows)
            for wid, w in enumerate(entry.windows, first):
                self._windows.append(w)
                for t in w.tokens:
                    p = self._postings.get(t)
                    if p is None:
                        p = self._postings[t] = array("I")
                    p.append(wid)
            self._ids[entry.path] = range(first, len(self._windows))
            self.paths_generation += not existed

    def _remove(self, path: str) -> None:
        with self._lock:
            self.generation += 1
            self.paths_generation += self._remove_locked(path)

    def _remove_locked(self, path: str) -> bool:
        old = self._files.pop(path, None)
        if old is None:
            return False
        self._bytes -= len(old.text)
        for wid in self._ids.pop(path, range(0)):
            self._windows[wid] = None
            self._dead += 1
        if self._dead > max(10_000, len(self._windows) // 2):
            self._compact()
        return True

    def _compact(self) -> None:
        """Renumber the live windows and rebuild the postings without the dead ones."""
        live = [w for w in self._windows if w is not None]
        self._windows, self._postings, self._ids, self._dead = [], {}, {}, 0
        by_path: dict[str, list[Window]] = {}
        for w in live:
            by_path.setdefault(w.path, []).append(w)
        for path, windows in by_path.items():
            first = len(self._windows)
            for wid, w in enumerate(windows, first):
                self._windows.append(w)
                for t in w.tokens:
                    self._postings.setdefault(t, array("I")).append(wid)
            self._ids[path] = range(first, len(self._windows))

    # -- reads (any thread, never waits for indexing) -----------------------------------------
    def text(self, path: str) -> str | None:
        with self._lock:
            e = self._files.get(path)
            return e.text if e else None

    def paths(self) -> list[str]:
        with self._lock:
            return list(self._files)

    def stats(self) -> dict:
        with self._lock:
            return {
                "files": len(self._files),
                "bytes": self._bytes,
                "windows": len(self._windows) - self._dead,
                "identifiers": len(self._postings),
                "build_seconds": round(self.build_seconds, 3),
            }

    def similar(self, query: set[str], k: int, exclude_path: str = "", extra: Sequence[Window] = ()) -> list[Match]:
        """The `k` windows most similar to `query` by identifier Jaccard (Copilot's measure), at
        most one per file region: the index's, less those of `exclude_path`, and `extra` ones
        (the current document's, cut from the request's own text)."""
        if not query:
            return []
        with self._lock:
            # Candidates come from the query's rarer identifiers (a window that shares only
            # `name` and `value` with it is not similar); their Jaccard is then exact.
            postings = sorted((self._postings.get(t, ()) for t in query), key=len)
            candidates: set[int] = set()
            for rank, p in enumerate(postings):
                if rank >= 2 and (len(p) > RARE_POSTINGS or len(candidates) > MAX_CANDIDATES):
                    break
                candidates.update(p)
            windows = [w for wid in candidates if (w := self._windows[wid]) is not None and w.path != exclude_path]
        scored = [Match(w, w.jaccard(query)) for w in windows]
        scored += [Match(w, w.jaccard(query)) for w in extra if w.overlap(query)]
        scored = heapq.nsmallest(8 * k, scored, key=lambda m: (-m.score, m.window.path, m.window.start))
        out: list[Match] = []
        for m in scored:
            # Overlapping windows of one file say the same thing twice: keep the best.
            if any(
                o.window.path == m.window.path and o.window.start < m.window.end and o.window.end > m.window.start
                for o in out
            ):
                continue
            out.append(m)
            if len(out) == k:
                break
        return out
