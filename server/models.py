"""The live model, swapped without dropping a request.

`get()` is called by the (single) inference worker before each request: when `current` in the
home directory names another version, the new model is loaded and used from then on; a request
already running keeps the model object it started with. A model that fails to load is logged and
the old one stays. Reading `current` costs microseconds, so by default every request looks: the
first request after a publish is served by the new version (the replay benchmark relies on it).

A broken version (missing tokenizer, damaged ONNX file or meta.json, `current` naming a deleted
version) never stops serving: the holder falls back to its parent, else the starter model, and
tells the user once per broken version through `on_problem` (the server shows it and logs it).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from rltab.policy.inference.loading import LoadedModel, load_model
from rltab.policy.model.formats import STARTER_VERSION
from rltab.policy.model.home import current_version, lineage, retired_head

log = logging.getLogger(__name__)
RETRY_FAILED_S = 60.0
"""A version that failed to load is tried again after this long: a remote inference server
(`--engine`) may have loaded its adapter since. Told again only if the reason changed."""


class ModelHolder:
    """The live model of each repository (each learns its own chain; documents outside one are
    served the shared base). Repositories on the same version share one loaded model."""

    def __init__(
        self,
        home: Path,
        model_path: Path | None = None,
        check_every_s: float = 0.0,
        loader: Callable[..., LoadedModel] = load_model,
        on_swap: Callable[[LoadedModel], None] | None = None,
        on_problem: Callable[[str], None] | None = None,
        threads: int = 0,
    ):
        self.home = home
        self.threads = threads  # the setting: 0 lets each model choose (policy/inference/threads.py)
        self.fixed = model_path  # --model DIR: serve that directory, never swap
        self.check_every_s = check_every_s
        self.loader = loader
        self.on_swap = on_swap
        self.on_problem = on_problem
        self._lock = threading.Lock()
        self._told_retired: set[str] = set()
        self._live: dict[str | None, LoadedModel] = {}  # repository -> the model serving it
        self._checked: dict[str | None, float] = {}
        self.last: LoadedModel | None = None  # the model that served the latest request
        self.last_repo: str | None = None
        self.failed: dict[str, str] = {}  # version -> why it could not be loaded
        self._failed_at: dict[str, float] = {}

    @property
    def version(self) -> str | None:
        return self.last.version if self.last else None

    def serving(self, repo: str | None) -> str | None:
        """The version serving `repo` now (without loading one): its live model, else the last used."""
        with self._lock:
            model = self._live.get(repo) or self.last
            return model.version if model else None

    def live(self) -> list[LoadedModel]:
        with self._lock:
            return list(self._live.values())

    def get(self, repo: str | None = None) -> LoadedModel:
        with self._lock:
            model = self._live.get(repo)
            if model is None:
                model = self._load_first(repo)
                self._checked[repo] = time.monotonic()
            elif self.fixed is None and time.monotonic() - self._checked.get(repo, 0.0) >= self.check_every_s:
                self._checked[repo] = time.monotonic()
                wanted = current_version(self.home, repo)
                if wanted != model.version and self._may_try(wanted):
                    model = self._swap(model, wanted)
            self._live[repo] = model
            self.last, self.last_repo = model, repo
            return model

    def set_threads(self, threads: int) -> None:
        """Run on `threads` from the next request: each repository's model loads again (a request
        running keeps the model it started with)."""
        with self._lock:
            if threads != self.threads:
                log.info("engine threads %d -> %d", self.threads, threads)
                self.threads = threads
                self._live.clear()

    def recheck(self) -> None:
        """Look at the pointers on the next request (after this process changed one)."""
        with self._lock:
            self._checked.clear()
            self.failed.clear()

    def _load(self, version: str | None = None, **how) -> LoadedModel:
        """A version already loaded for another repository, else a fresh load."""
        for m in self._live.values():
            if version is not None and m.version == version and self.fixed is None:
                return m
        how["threads"] = self.threads
        return self.loader(self.home, version=version, **how) if version is not None else self.loader(self.home, **how)

    def _load_first(self, repo: str | None) -> LoadedModel:
        """The wanted model, else the nearest ancestor that loads, else the starter. A head retired
        by a new starter is passed over (current_version), and the user is told once."""
        head = None if self.fixed is not None else retired_head(self.home, repo)
        if head is not None and head[0] not in self._told_retired:
            self._told_retired.add(head[0])
            if self.on_problem is not None:
                self.on_problem(
                    f"rltab: {head[0]} and the versions before it were {head[1]}: they are kept but no longer "
                    "served; learning starts again from the new model (`rltab versions` lists them as retired)."
                )
        if self.fixed is not None:
            attempts: list[tuple[str, dict]] = [(str(self.fixed), {"model_path": self.fixed})]
            attempts.append((STARTER_VERSION, {"version": STARTER_VERSION}))
        else:
            attempts = [(v, {"version": v}) for v in lineage(self.home, current_version(self.home, repo))]
        broken: list[str] = []
        for name, how in attempts:
            if name in self.failed and name != attempts[-1][0]:  # known broken (another repository met it)
                continue
            try:
                model = self._load(**how)
            except Exception as e:
                self.failed[name], self._failed_at[name] = _one_line(e), time.monotonic()
                broken.append(name)
                if name == attempts[-1][0]:
                    raise
                continue
            if broken:  # told once per broken version
                self._tell(
                    f"rltab: cannot load model {broken[0]} ({self.failed[broken[0]]}); serving {model.version} instead"
                )
            return model
        raise AssertionError("unreachable")

    def _tell(self, message: str) -> None:
        log.warning("%s", message)
        if self.on_problem:
            self.on_problem(message)

    def _may_try(self, version: str) -> bool:
        return version not in self.failed or time.monotonic() - self._failed_at.get(version, 0.0) >= RETRY_FAILED_S

    def _swap(self, old: LoadedModel, version: str) -> LoadedModel:
        try:
            new = self._load(version=version)
        except Exception as e:  # a broken publish must not take serving down
            reason, before = _one_line(e), self.failed.get(version)
            self.failed[version], self._failed_at[version] = reason, time.monotonic()
            if reason != before:
                self._tell(f"rltab: cannot load model {version} ({reason}); keeping {old.version}")
            return old
        log.info("swapped model %s -> %s", old.version, new.version)
        if self.on_swap:
            self.on_swap(new)
        return new


def _one_line(e: Exception) -> str:
    return " ".join(f"{type(e).__name__}: {e}".split())[:300]
