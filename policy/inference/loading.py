"""How a model version becomes a ready-to-serve engine: its directory (or its base's, for an
adapter version) loaded on onnxruntime with its int8 graph, or on a remote inference server, with
the tokenizer and FIM template prompts are built with. Adapter versions share their base's
session, the adapter switched per run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import cast

from tokenizers import Tokenizer

from rltab.policy.model import tokenizer as T
from rltab.policy.model.build_int8 import onnx_path
from rltab.policy.model.checkpoint import max_positions, model_languages, read_meta
from rltab.policy.model.fim import FimTemplate, fim_template, stop_token_ids
from rltab.policy.model.formats import ADAPTER_ONNX, ADAPTER_WEIGHTS, adapter_name, tokenizer_digest
from rltab.policy.model.home import base_dir, current_version, model_dir

from .engine import Engine
from .remote_engine import RemoteEngine, RemoteSpec
from .threads import engine_threads


@dataclass
class LoadedModel:
    """Everything serving needs from one model version."""

    version: str
    path: Path
    engine: Engine | RemoteEngine
    tokenizer: Tokenizer
    template: FimTemplate
    languages: tuple[str, ...] | None = None  # what it was trained on (editors enable those); None: any
    tokenizer_digest: str = ""  # formats.tokenizer_digest: what its token ids belong to

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False).ids  # prompts add their own BOS

    def token_id(self, token: str) -> int:
        return T.token_id(self.tokenizer, token)


_BASES: dict[str, LoadedModel] = {}  # base models loaded on their LoRA graph, shared by the adapter versions


def load_model(
    home: Path,
    version: str | None = None,
    model_path: Path | None = None,
    threads: int = 1,
    remote: RemoteSpec | None = None,
) -> LoadedModel:
    """Load `model_path`, or `version` from `home`, or the current version, on `threads` threads
    (0: as many as the machine and the model's size call for, threads.engine_threads). An adapter version
    is its base's engine (one ONNX session for all of them) with the adapter active. With
    `remote`, the engine is that inference server (the adapter named per request)."""
    if model_path is None:
        version = version or current_version(home)
        model_path = model_dir(home, version)
    else:
        version = version or read_meta(model_path).get("version") or Path(model_path).name
    model_path = Path(model_path)
    base = base_dir(home, model_path)
    if remote is not None:
        return _load_remote(model_path, base, version, remote)
    if base == model_path:
        return _load_full(model_path, version, threads)
    key = f"{base.resolve()}|{threads}"
    if key not in _BASES:
        while len(_BASES) >= 2:
            _BASES.pop(next(iter(_BASES)))
        _BASES[key] = _load_full(base, read_meta(base).get("version") or base.name, threads, lora=True)
    shared = _BASES[key]
    if not (model_path / ADAPTER_ONNX).exists():
        raise FileNotFoundError(f"no adapter at {model_path} ({ADAPTER_ONNX} missing)")
    return LoadedModel(
        version=version,
        path=model_path,
        engine=cast("Engine", shared.engine).with_adapter(model_path / ADAPTER_ONNX),
        tokenizer=shared.tokenizer,
        template=shared.template,
        languages=shared.languages,
        tokenizer_digest=shared.tokenizer_digest,
    )


def _prompt_side(model_path: Path) -> tuple[Tokenizer, FimTemplate]:
    """A full model directory's tokenizer and FIM template: what prompts are built with."""
    if not (model_path / "tokenizer.json").exists():
        raise FileNotFoundError(f"no model at {model_path} (tokenizer.json missing)")
    return T.load_tokenizer(model_path), fim_template(model_path)


def _load_remote(model_path: Path, base: Path, version: str, remote: RemoteSpec) -> LoadedModel:
    """The tokenizer and template from the (base) model directory; the model runs on the server."""
    tok, template = _prompt_side(base)
    adapter = None
    if base != model_path:
        if not (model_path / ADAPTER_WEIGHTS).exists():
            raise FileNotFoundError(f"no adapter at {model_path} ({ADAPTER_WEIGHTS} missing)")
        adapter = adapter_name(model_path) + (".gguf" if not remote.openai else "")
    engine = RemoteEngine(
        remote,
        T.token_bytes(tok),
        stop_token_ids(tok, template),
        decode=lambda ids: tok.decode(list(ids), skip_special_tokens=False),
        encode=lambda text: tok.encode(text, add_special_tokens=False).ids,
        max_positions=max_positions(base),
        adapter=adapter,
    )
    engine.check_adapter()  # not loaded there yet: this version cannot be served (the holder keeps the last)
    return LoadedModel(version, model_path, engine, tok, template, model_languages(base), tokenizer_digest(base))


def _load_full(model_path: Path, version: str, threads: int, lora: bool = False) -> LoadedModel:
    tok, template = _prompt_side(model_path)

    def engine_for(path: Path) -> Engine:
        return Engine(
            path,
            T.token_bytes(tok),
            stop_token_ids(tok, template),
            threads=threads or engine_threads(0, model_bytes=path.stat().st_size),  # 0: chosen here
            max_positions=max_positions(model_path),
        )

    path = onnx_path(model_path, lora)
    try:
        engine = engine_for(path)
    except Exception:
        if path.parent == model_path:  # the model's own file is damaged: nothing to rebuild it from here
            raise
        path.unlink(missing_ok=True)  # a damaged cache entry: build it again, once
        engine = engine_for(onnx_path(model_path, lora))
    return LoadedModel(
        version=version,
        path=model_path,
        engine=engine,
        tokenizer=tok,
        template=template,
        languages=model_languages(model_path),
        tokenizer_digest=tokenizer_digest(model_path),
    )
