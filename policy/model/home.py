"""A home's layout: where models live, which version is current (for everyone, or for one
repository's chain), and how versions are listed, switched, rolled back and removed.

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

import json
import os
from functools import lru_cache
from pathlib import Path

import platformdirs

from .checkpoint import STARTER_DIR, read_meta
from .formats import ADAPTER_WEIGHTS, STARTER_VERSION, TRAINING_FILE, base_identity


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
    the starter. A head whose base changed (a new starter) is retired: passed over."""
    for p in ([_pointer(home, repo)] if repo else []) + [home / "current"]:
        name = p.read_text().strip() if p.exists() else ""
        if name and (home / "models" / name).is_dir() and retired(home, name) is None:
            return name
    return STARTER_VERSION


def retired(home: Path, version: str) -> str | None:
    """Why `version` can no longer be served, or None. An adapter version belongs to the weights
    it was trained over: when its base changes (rltab ships a new starter; a model is imported
    again under the same name), it and its chain are retired, kept on disk but never served."""
    if version == STARTER_VERSION:
        return None
    d = home / "models" / version
    try:
        meta = read_meta(d)
    except (OSError, ValueError):
        return None  # a damaged version: the model holder reports it when it fails to load
    base = meta.get("base")
    if not base:
        return None  # a full model (imported): its own base
    base_path = model_dir(home, base)
    if not (base_path / "config.json").exists():
        return f"its base {base} is gone"
    if "base_identity" in meta:
        if meta["base_identity"] != _identity(base_path):
            return f"learned over an earlier {base} model"
        return None
    # Published before versions recorded their base: its adapter must fit the base's shape.
    adapter = d / ADAPTER_WEIGHTS
    mtime = adapter.stat().st_mtime_ns if adapter.exists() else 0
    fits = _adapter_fits(str(adapter), str(base_path), mtime, _identity(base_path))
    return None if fits else f"learned over an earlier {base} model"


def retired_head(home: Path, repo: str | None = None) -> tuple[str, str] | None:
    """(version, why) when the pointer serving `repo` names a retired version (a new starter has
    come since it was learned); None otherwise."""
    for p in ([_pointer(home, repo)] if repo else []) + [home / "current"]:
        name = p.read_text().strip() if p.exists() else ""
        if name and (home / "models" / name).is_dir():
            why = retired(home, name)
            return (name, why) if why else None
    return None


def _identity(base_path: Path) -> str:
    weights = base_path / "model.safetensors"
    stat = weights.stat() if weights.exists() else None
    return _identity_of(str(base_path), stat.st_mtime_ns if stat else 0, stat.st_size if stat else 0)


@lru_cache(maxsize=16)
def _identity_of(path: str, mtime_ns: int, size: int) -> str:  # the weights are read once per change
    return base_identity(path)


@lru_cache(maxsize=64)
def _adapter_fits(adapter: str, base_path: str, mtime_ns: int, base: str) -> bool:
    """Whether a LoRA adapter's matrices fit the base (its layers and widths); cached per file
    and base (`mtime_ns`, `base`: the cache key)."""
    if not Path(adapter).exists():
        return False
    from safetensors import safe_open

    config = json.loads((Path(base_path) / "config.json").read_text())
    widths = {config.get("hidden_size"), config.get("intermediate_size")}
    layers = config.get("num_hidden_layers", 0)
    with safe_open(str(adapter), framework="numpy") as f:
        names = f.keys()  # a safe_open handle is not iterable itself
        for key in names:
            index = key.split(".layers.")[1].split(".")[0] if ".layers." in key else "0"
            shape = f.get_slice(key).get_shape()
            if int(index) >= layers or ("lora_A" in key and shape[-1] not in widths):
                return False
    return True


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


def training_now(home: Path) -> bool:
    """Whether an update cycle is running for `home` (its marker names a live process)."""
    try:
        pid = int((home / TRAINING_FILE).read_text().strip() or 0)
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    return pid > 0


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


def list_versions(home: Path, repo: str | None = None) -> list[dict]:
    """The starter model and every published version, oldest first, with their meta.json; with
    `repo`, only the versions learnt in that repository."""
    if repo:
        want = str(Path(repo).resolve())
        return [v for v in list_versions(home) if v.get("repo") and str(Path(v["repo"]).resolve()) == want]
    out = [{**read_meta(STARTER_DIR), "version": STARTER_VERSION}]
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
