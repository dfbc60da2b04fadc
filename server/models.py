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
from pathlib import Path
from typing import Callable

from rltab.policy.model_store import STARTER_VERSION, LoadedModel, current_version, lineage, load_model

log = logging.getLogger(__name__)


class ModelHolder:
    def __init__(self, home: Path, model_path: Path | None = None, check_every_s: float = 0.0,
                 loader: Callable[..., LoadedModel] = load_model, on_swap: Callable[[LoadedModel], None] | None = None,
                 on_problem: Callable[[str], None] | None = None):
        self.home = home
        self.fixed = model_path  # --model DIR: serve that directory, never swap
        self.check_every_s = check_every_s
        self.loader = loader
        self.on_swap = on_swap
        self.on_problem = on_problem
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
                self._model = self._load_first()
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

    def _load_first(self) -> LoadedModel:
        """The wanted model, else the nearest ancestor that loads, else the starter."""
        if self.fixed is not None:
            attempts: list[tuple[str, dict]] = [(str(self.fixed), {"model_path": self.fixed})]
            attempts.append((STARTER_VERSION, {"version": STARTER_VERSION}))
        else:
            attempts = [(v, {"version": v}) for v in lineage(self.home, current_version(self.home))]
        broken: list[str] = []
        for name, how in attempts:
            try:
                model = self.loader(self.home, **how)
            except Exception as e:
                self.failed[name] = _one_line(e)
                broken.append(name)
                if name == attempts[-1][0]:
                    raise
                continue
            if broken:
                self._tell(f"rltab: cannot load model {broken[0]} ({self.failed[broken[0]]}); "
                           f"serving {model.version} instead")
            return model
        raise AssertionError("unreachable")

    def _tell(self, message: str) -> None:
        log.warning("%s", message)
        if self.on_problem:
            self.on_problem(message)

    def _swap(self, version: str) -> None:
        try:
            new = self.loader(self.home, version=version)
        except Exception as e:  # a broken publish must not take serving down
            self.failed[version] = _one_line(e)
            self._tell(f"rltab: cannot load model {version} ({self.failed[version]}); "
                       f"keeping {self._model.version}")
            return
        log.info("swapped model %s -> %s", self._model.version, new.version)
        self._model = new
        if self.on_swap:
            self.on_swap(new)


def _one_line(e: Exception) -> str:
    return " ".join(f"{type(e).__name__}: {e}".split())[:300]
