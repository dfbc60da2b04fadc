"""The live model, swapped without dropping a request.

`get()` is called by the (single) inference worker before each request: when `current` in the
home directory names another version, the new model is loaded and used from then on; a request
already running keeps the model object it started with. A model that fails to load is logged and
the old one stays. Reading `current` costs microseconds, so by default every request looks: the
first request after a publish is served by the new version (the replay benchmark relies on it).
"""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Callable

from rltab.policy.model_store import LoadedModel, current_version, load_model

log = logging.getLogger(__name__)


class ModelHolder:
    def __init__(self, home: Path, model_path: Path | None = None, check_every_s: float = 0.0,
                 loader: Callable[..., LoadedModel] = load_model, on_swap: Callable[[LoadedModel], None] | None = None):
        self.home = home
        self.fixed = model_path  # --model DIR: serve that directory, never swap
        self.check_every_s = check_every_s
        self.loader = loader
        self.on_swap = on_swap
        self._lock = threading.Lock()
        self._model: LoadedModel | None = None
        self._checked = 0.0
        self.failed: dict[str, str] = {}  # version -> why it could not be loaded

    @property
    def version(self) -> str | None:
        return self._model.version if self._model else None

    def get(self) -> LoadedModel:
        with self._lock:
            if self._model is None:
                self._model = self.loader(self.home, model_path=self.fixed)
                self._checked = time.monotonic()
                return self._model
            if self.fixed is None and time.monotonic() - self._checked >= self.check_every_s:
                self._checked = time.monotonic()
                wanted = current_version(self.home)
                if wanted != self._model.version and wanted not in self.failed:
                    self._swap(wanted)
            return self._model

    def recheck(self) -> None:
        """Look at `current` on the next request (after this process changed it)."""
        with self._lock:
            self._checked = 0.0
            self.failed.clear()

    def _swap(self, version: str) -> None:
        try:
            new = self.loader(self.home, version=version)
        except Exception as e:  # a broken publish must not take serving down
            log.exception("cannot load model %s; keeping %s", version, self._model.version)
            self.failed[version] = str(e)
            return
        log.info("swapped model %s -> %s", self._model.version, new.version)
        self._model = new
        if self.on_swap:
            self.on_swap(new)
