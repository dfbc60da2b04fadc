"""Where models live and how one becomes a ready-to-serve engine.

Home directory (architecture.md §2): $RLTAB_HOME, else the platform's data directory (platformdirs:
Linux $XDG_DATA_HOME/rltab or ~/.local/share/rltab, macOS ~/Library/Application Support/rltab,
Windows %LOCALAPPDATA%\\rltab).
  models/<version>/   published model directories (weights, tokenizer, meta.json, model.int8.onnx)
  current             the live version's name (absent: the shipped starter model)
ONNX files built for directories that ship none (the starter model) are cached per user, in
$RLTAB_CACHE, else the platform's cache directory (Linux ~/.cache/rltab): onnx/<digest>/model.int8.onnx
(and model.int8.lora.onnx, the same graph with LoRA inputs, for adapter versions).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

import platformdirs

from . import tokenizer as T
from .fim import RLTAB_TEMPLATE, FimTemplate
from .model import STARTER_DIR, read_meta

if TYPE_CHECKING:  # the engine loads onnxruntime: imported when a model is loaded, not before
    from tokenizers import Tokenizer

    from .engine import Engine
    from .remote_engine import RemoteEngine, RemoteSpec

STARTER_VERSION = "starter"


def default_home() -> Path:
    """$RLTAB_HOME, else the platform's data directory (Linux: $XDG_DATA_HOME or ~/.local/share)."""
    if os.environ.get("RLTAB_HOME"):
        return Path(os.environ["RLTAB_HOME"]).expanduser()
    return Path(platformdirs.user_data_dir("rltab", appauthor=False))


def cache_dir() -> Path:
    """$RLTAB_CACHE, else the platform's cache directory (Linux: $XDG_CACHE_HOME or ~/.cache)."""
    if os.environ.get("RLTAB_CACHE"):
        return Path(os.environ["RLTAB_CACHE"]).expanduser()
    return Path(platformdirs.user_cache_dir("rltab", appauthor=False))


def repo_key(repo: str) -> str:
    """A file-name-safe key for a repository (its resolved path)."""
    import hashlib

    return hashlib.sha256(str(Path(repo).resolve()).encode()).hexdigest()[:16]


def _pointer(home: Path, repo: str | None) -> Path:
    """The file naming the live version: `current` for the shared base (documents outside any
    learned repository), `repos/<key>/current` for one repository's chain."""
    return home / "current" if not repo else home / "repos" / repo_key(repo) / "current"


def current_version(home: Path, repo: str | None = None) -> str:
    """The version serving `repo`: its own chain's head, else the shared base (`current`), else
    the starter."""
    for p in ([_pointer(home, repo)] if repo else []) + [home / "current"]:
        name = p.read_text().strip() if p.exists() else ""
        if name and (home / "models" / name).is_dir():
            return name
    return STARTER_VERSION


def repo_pointers(home: Path) -> dict[str, str]:
    """Repository path -> the version its pointer names (repositories with a chain of their own)."""
    out = {}
    for d in (home / "repos").glob("*") if (home / "repos").is_dir() else []:
        try:
            out[(d / "path").read_text().strip()] = (d / "current").read_text().strip()
        except OSError:
            continue
    return out


def model_dir(home: Path, version: str) -> Path:
    return STARTER_DIR if version == STARTER_VERSION else home / "models" / version


def base_dir(home: Path, model_path: Path) -> Path:
    """The full model a version's weights live in: its base if it is a LoRA adapter version
    (adapters.py), else itself. Tokenizer, prompt template and ONNX graph come from there."""
    base = read_meta(model_path).get("base")
    return model_dir(home, base) if base else Path(model_path)


EXPORT_FORMAT = 4  # bump when the graph changes: cached ONNX files of older formats are rebuilt
LOGIT_ROWS = 9  # the graph's logits cover the last 9 positions run: engine.LOOKUP_TOKENS + 1
PLAIN_ONNX, LORA_ONNX = "model.int8.onnx", "model.int8.lora.onnx"
REQUEST_FILE = "train.request"  # in a home: `rltab.train` asks a watching updater to run a cycle now
TRAINING_FILE = "training.pid"  # in a home while an update cycle runs: the updater's pid


def model_languages(model_path: Path) -> tuple[str, ...] | None:
    """The languages a full model knows: meta.json's "languages" (language ids, as LSP names them),
    else Python for rltab's own starter; None for an imported model that does not say."""
    meta = read_meta(model_path)
    if isinstance(meta.get("languages"), list):
        return tuple(str(x) for x in meta["languages"])
    return ("python",) if meta.get("name") == STARTER_VERSION else None


def training_now(home: Path) -> bool:
    """Whether an update cycle is running for `home` (its marker names a live process)."""
    try:
        pid = int((home / TRAINING_FILE).read_text().strip() or 0)
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    return pid > 0


def weights_digest(model_dir: str | Path) -> str:
    """Identity of a model directory's weights, used as the ONNX cache key."""
    h = hashlib.sha256(f"format {EXPORT_FORMAT}".encode())
    for name in ("config.json", "model.safetensors", "adapter.safetensors"):
        p = Path(model_dir) / name
        h.update(p.read_bytes() if p.exists() else b"")
    return h.hexdigest()[:16]


def onnx_path(model_path: Path, lora: bool = False) -> Path:
    """The int8 ONNX file of a model directory, exported and quantized on first use: the plain
    graph, or with `lora` the one that takes adapters at run time (export.py)."""
    name = LORA_ONNX if lora else PLAIN_ONNX
    own = model_path / name
    if own.exists():
        return own
    cached = cache_dir() / "onnx" / weights_digest(model_path) / name
    if not (cached.parent / PLAIN_ONNX).exists():  # written last: both files are there
        build_onnx_file(model_path, cached.parent)
    return cached


class OnnxBuildError(Exception):
    """A model's int8 ONNX file is not built and cannot be built here."""


def build_onnx_file(model_path: Path, out_dir: Path) -> None:
    """Export and quantize, in this process where torch is loaded already (the updater), else in a
    process of its own: serving never loads torch, transformers or onnx."""
    if "torch" in sys.modules:
        from .export import build_onnx

        build_onnx(model_path, out_dir)
        return
    done = subprocess.run(
        [sys.executable, "-m", "rltab.policy.build_int8", str(model_path), str(out_dir)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        tail = ((done.stderr or done.stdout).strip().splitlines() or ["no output"])[-1]
        hint = (
            " (building it needs torch, transformers and onnx: install rltab with its dependencies, as its README says)"
            if "No module named" in tail
            else ""
        )
        raise OnnxBuildError(f"cannot build the int8 ONNX file of {model_path}: {tail}{hint}")


def fim_template(model_path: Path) -> FimTemplate:
    """The model's FIM tokens (meta.json "fim"), and whether to serve FIM prompts at all
    ("serve_fim": set from measured exact match, FIM vs left-to-right)."""
    meta = read_meta(model_path)
    fim = dict(meta.get("fim") or {})
    if "serve_fim" in meta:
        fim["serve_fim"] = bool(meta["serve_fim"])
    if "stops" in fim:
        fim["stops"] = tuple(fim["stops"])
    return FimTemplate(**fim) if fim else RLTAB_TEMPLATE


@dataclass
class LoadedModel:
    """Everything serving needs from one model version."""

    version: str
    path: Path
    engine: Engine | RemoteEngine
    tokenizer: Tokenizer
    template: FimTemplate
    languages: tuple[str, ...] | None = None  # what it was trained on (editors enable those); None: any

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False).ids  # prompts add their own BOS

    def token_id(self, token: str) -> int:
        return T.token_id(self.tokenizer, token)


ADAPTER_ONNX = "adapter.onnx_adapter"  # a LoRA adapter version's files (adapters.py)
ADAPTER_WEIGHTS = "adapter.safetensors"
_BASES: dict[str, LoadedModel] = {}  # base models loaded on their LoRA graph, shared by the adapter versions


def load_model(
    home: Path,
    version: str | None = None,
    model_path: Path | None = None,
    threads: int = 1,
    remote: RemoteSpec | None = None,
) -> LoadedModel:
    """Load `model_path`, or `version` from `home`, or the current version. An adapter version
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
    )


def adapter_name(model_path: Path) -> str:
    """The name a shared inference server knows an adapter version by: its version and a digest
    of its weights, so two users' v0003 never collide (`rltab export-adapter` writes it)."""
    digest = hashlib.sha256((Path(model_path) / ADAPTER_WEIGHTS).read_bytes()).hexdigest()[:12]
    return f"rltab-{Path(model_path).name}-{digest}"


def _max_positions(model_path: Path) -> int:
    config = json.loads((model_path / "config.json").read_text())
    return config.get("max_position_embeddings") or config.get("n_positions") or 2048


def _prompt_side(model_path: Path) -> tuple[Tokenizer, FimTemplate]:
    """A full model directory's tokenizer and FIM template: what prompts are built with."""
    if not (model_path / "tokenizer.json").exists():
        raise FileNotFoundError(f"no model at {model_path} (tokenizer.json missing)")
    return T.load_tokenizer(model_path), fim_template(model_path)


def _load_remote(model_path: Path, base: Path, version: str, remote: RemoteSpec) -> LoadedModel:
    """The tokenizer and template from the (base) model directory; the model runs on the server."""
    from .remote_engine import RemoteEngine

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
        max_positions=_max_positions(base),
        adapter=adapter,
    )
    engine.check_adapter()  # not loaded there yet: this version cannot be served (the holder keeps the last)
    return LoadedModel(version, model_path, engine, tok, template, model_languages(base))


def _load_full(model_path: Path, version: str, threads: int, lora: bool = False) -> LoadedModel:
    from .engine import Engine

    tok, template = _prompt_side(model_path)

    def engine_for(path: Path) -> Engine:
        return Engine(
            path,
            T.token_bytes(tok),
            stop_token_ids(tok, template),
            threads=threads,
            max_positions=_max_positions(model_path),
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
    )


def lineage(home: Path, version: str) -> list[str]:
    """`version`, its parent, its parent's parent... ending with the starter model. A damaged
    meta.json ends the chain early (the starter is always last)."""
    chain = [version]
    while chain[-1] != STARTER_VERSION and len(chain) < 1000:
        try:
            parent = read_meta(model_dir(home, chain[-1])).get("parent") or STARTER_VERSION
        except (OSError, ValueError, AttributeError):
            parent = STARTER_VERSION
        chain.append(parent if parent not in chain else STARTER_VERSION)
    return chain


def stop_token_ids(tok, template: FimTemplate) -> list[int]:
    """Ids that end a completion: the template's stop tokens and rltab's own special tokens."""
    names = template.stop_tokens | set(T.SPECIAL_TOKENS)
    return sorted(i for t, i in tok.get_vocab(with_added_tokens=True).items() if t in names)


def list_versions(home: Path, repo: str | None = None) -> list[dict]:
    """The starter model and every published version, oldest first, with their meta.json; with
    `repo`, only the versions learnt in that repository."""
    if repo:
        want = str(Path(repo).resolve())
        return [v for v in list_versions(home) if v.get("repo") and str(Path(v["repo"]).resolve()) == want]
    out = [{"version": STARTER_VERSION, **read_meta(STARTER_DIR)}]
    root = home / "models"
    if root.is_dir():
        metas = []
        for d in root.iterdir():
            if d.is_dir() and not d.name.startswith(".") and (d / "meta.json").exists():
                try:
                    metas.append({**read_meta(d), "version": d.name})
                except (OSError, ValueError, TypeError) as e:  # a damaged meta.json: list it as such
                    metas.append({"version": d.name, "broken": f"meta.json: {e}"})
        out += sorted(metas, key=lambda m: (m.get("time", 0), m["version"]))
    return out


def set_current(home: Path, version: str, repo: str | None = None) -> None:
    """Point `current` (or `repo`'s own pointer) at `version` atomically; the server picks it up
    on its next request."""
    if version != STARTER_VERSION and not (home / "models" / version / "meta.json").exists():
        raise FileNotFoundError(f"no published version {version!r} in {home / 'models'}")
    target = _pointer(home, repo)
    target.parent.mkdir(parents=True, exist_ok=True)
    if repo:
        (target.parent / "path").write_text(str(Path(repo).resolve()) + "\n")
    tmp = target.parent / f".current.{os.getpid()}"
    tmp.write_text(version + "\n")
    os.replace(tmp, target)


def rollback(home: Path, version: str | None = None, repo: str | None = None) -> str:
    """Switch `repo` (else the shared base) to `version`, or else to its current version's parent.
    Returns the new version."""
    if version is None:
        cur = current_version(home, repo)
        if cur == STARTER_VERSION:
            raise ValueError("already serving the starter model; nothing to roll back to")
        version = read_meta(model_dir(home, cur)).get("parent") or STARTER_VERSION
    set_current(home, version, repo)
    return version


def remove_versions(home: Path, versions: set[str]) -> list[str]:
    """Delete published versions and every version descended from them (they inherited the
    weights). When the live version goes, `current` moves to its nearest surviving ancestor.
    Returns the names removed. (`rltab forget`: models that learned from forgotten text go too.)"""
    import shutil

    metas = {v["version"]: v for v in list_versions(home) if v["version"] != STARTER_VERSION}
    doomed = {v for v in versions if v in metas}
    grew = True
    while grew:
        children = {name for name, m in metas.items() if m.get("parent") in doomed} - doomed
        doomed |= children
        grew = bool(children)
    for repo in [None, *repo_pointers(home)]:  # every pointer to a doomed version moves back
        cur = _pointer(home, repo).read_text().strip() if _pointer(home, repo).exists() else STARTER_VERSION
        if cur in doomed:
            keep = cur
            while keep in doomed:
                keep = metas[keep].get("parent") or STARTER_VERSION
            set_current(home, keep if keep in metas or keep == STARTER_VERSION else STARTER_VERSION, repo)
    for name in sorted(doomed):
        shutil.rmtree(home / "models" / name, ignore_errors=True)
    return sorted(doomed)


def forget_repo_models(home: Path, repo: str) -> list[str]:
    """Delete every version learnt in `repo` (and their descendants) and the repository's own
    pointer: `rltab forget --repo` leaves no adapter that saw its code. Returns the names removed."""
    import shutil

    removed = remove_versions(home, {v["version"] for v in list_versions(home, repo)})
    shutil.rmtree(_pointer(home, repo).parent, ignore_errors=True)
    return removed


def make_private(path: Path) -> None:
    """Directories 0700 and files 0600 under `path` (and `path` itself): the home and published
    models hold the user's code. Copied files keep their source's mode, so a umask is not enough."""
    path = Path(path)
    if not path.exists():
        return
    os.chmod(path, 0o700 if path.is_dir() else 0o600)
    for root, dirs, files in os.walk(path):
        for d in dirs:
            os.chmod(os.path.join(root, d), 0o700, follow_symlinks=False)
        for f in files:
            p = os.path.join(root, f)
            if not os.path.islink(p):
                os.chmod(p, 0o600)
